/**
 * The embedded database's image (issue 16, target 3; src/db/embedded-image.ts): a new DATA_DIR is
 * created from a shipped cluster, initialised and migrated, instead of running initdb; the image
 * must be exactly up to date with drizzle/ and the installed PGlite (`bun run db:embedded-image`),
 * and an image or a DATA_DIR behind drizzle/ is still migrated at start.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ImageUse, migrationsFolder, openPglite } from "../../src/db/client";
import {
  claimDataDir,
  imageOutOfDate,
  imageTarball,
  imageUnusable,
  installedPgliteVersion,
  migrationsOf,
  readImageManifest,
  type ImageManifest,
} from "../../src/db/embedded-image";
import { resourcePath } from "../../src/resources";

setDefaultTimeout(120_000);

const root = mkdtempSync(join(tmpdir(), "nst-image-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A copy of drizzle/ with one more migration (`tag`, `statement`) at the end of its journal. */
function folderWithExtra(from: string, tag: string, statement: string): string {
  const folder = join(root, `migrations-${tag}`);
  cpSync(from, folder, { recursive: true });
  const journalPath = join(folder, "meta/_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: { idx: number; when: number; tag: string }[] };
  const last = journal.entries.at(-1)!;
  journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1000, tag });
  writeFileSync(journalPath, JSON.stringify(journal, null, 2));
  writeFileSync(join(folder, `${tag}.sql`), statement);
  return folder;
}

describe("the shipped image", () => {
  test("is up to date with drizzle/ and the installed PGlite (else run `bun run db:embedded-image`)", () => {
    const outOfDate = imageOutOfDate(readImageManifest(), migrationsOf(migrationsFolder), installedPgliteVersion());
    expect(outOfDate, `the embedded database image is out of date: ${outOfDate}; run bun run db:embedded-image`).toBeNull();
  });

  test("`bun run db:embedded-image` leaves an up-to-date image as it is (no churn in git)", () => {
    // Run on an out-of-date image the script would write a new one into this checkout: a test must
    // not (the test above names what to run).
    expect(imageOutOfDate(readImageManifest(), migrationsOf(migrationsFolder), installedPgliteVersion())).toBeNull();
    const path = resourcePath(imageTarball);
    const before = readFileSync(path);
    const run = Bun.spawnSync(["bun", "scripts/embedded-image.ts"], { cwd: resourcePath("."), stdout: "pipe", stderr: "pipe" });
    expect(run.exitCode, run.stderr.toString()).toBe(0);
    expect(run.stdout.toString()).toContain("up to date");
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
  });

  test("holds the migrations its manifest names, as the migrator recorded them", async () => {
    const tarball = new Blob([readFileSync(resourcePath(imageTarball))], { type: "application/x-gzip" });
    const client = new PGlite({ loadDataDir: tarball });
    try {
      const recorded = (await client.query<{ hash: string }>("select hash from drizzle.__drizzle_migrations order by created_at")).rows;
      expect(recorded.map((r) => r.hash)).toEqual(readImageManifest()!.migrations.map((m) => m.hash));
    } finally {
      await client.close();
    }
  });
});

describe("whether an image can start a DATA_DIR", () => {
  const current = [
    { tag: "0000_a", hash: "aa" },
    { tag: "0001_b", hash: "bb" },
  ];
  const image = (migrations = current, pglite = "0.5.17"): ImageManifest => ({ pglite, migrations });

  test("one holding exactly drizzle/'s migrations can, and is up to date", () => {
    expect(imageUnusable(image(), current, "0.5.17")).toBeNull();
    expect(imageOutOfDate(image(), current, "0.5.17")).toBeNull();
  });

  test("one behind drizzle/ can (the start migrates the rest), but is out of date", () => {
    expect(imageUnusable(image(current.slice(0, 1)), current, "0.5.17")).toBeNull();
    expect(imageOutOfDate(image(current.slice(0, 1)), current, "0.5.17")).toBe("the image lacks 0001_b");
  });

  test("one with a migration drizzle/ lacks or holds differently cannot, nor one of another PGlite, nor none", () => {
    expect(imageUnusable(image(), current.slice(0, 1), "0.5.17")).toBe("the image holds migrations drizzle/ lacks");
    expect(imageUnusable(image([current[0]!, { tag: "0001_b", hash: "cc" }]), current, "0.5.17")).toBe("migration 0001_b differs from the image's");
    expect(imageUnusable(image(), current, "0.6.0")).toBe("the image was written by PGlite 0.5.17, 0.6.0 is installed");
    expect(imageUnusable(image(), current, null)).toContain("an unknown version is installed");
    expect(imageUnusable(null, current, "0.5.17")).toBe("no image");
  });
});

describe("a new DATA_DIR", () => {
  test("is created from the image: nothing left to migrate, the embedded settings hold, and its data lasts", async () => {
    const dataDir = join(root, "new");
    const uses: ImageUse[] = [];
    const database = await openPglite(dataDir, { onImage: (use) => uses.push(use) });
    try {
      expect(uses).toEqual([{ image: true, migrations: migrationsOf(migrationsFolder).length }]);
      expect(statSync(dataDir).mode & 0o777).toBe(0o700); // only its owner reads a new DATA_DIR
      expect(await database.migrate()).toBe(0);
      expect(await database.migrationsApplied()).toBe(true);
      const [settings] = await database.rows<{ cost: string; buffers: string }>(
        sql`select current_setting('random_page_cost') as cost, current_setting('shared_buffers') as buffers`,
      );
      expect(settings).toEqual({ cost: "1.1", buffers: "16MB" });
      await database.rows(sql`insert into clients (phone_number, operator_code) values ('79990000001', '999')`);
    } finally {
      await database.close();
    }
    expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);
    const reopened = await openPglite(dataDir, { onImage: (use) => uses.push(use) });
    try {
      expect(uses.length, "an existing DATA_DIR is opened, not created again").toBe(1);
      expect(await reopened.migrate()).toBe(0);
      const [row] = await reopened.rows<{ n: number }>(sql`select count(*)::int as n from clients where phone_number = '79990000001'`);
      expect(row!.n).toBe(1);
    } finally {
      await reopened.close();
    }
  });

  test("whose creation was cut short (files, no PG_VERSION) is created again at the next start", async () => {
    const dataDir = join(root, "interrupted");
    const claim = claimDataDir(dataDir);
    expect(await claim.created).toEqual({ image: true, migrations: migrationsOf(migrationsFolder).length });
    claim.unlock();
    // What a process killed during the extraction leaves: the creation's marker, PG_VERSION (written
    // last) missing, and so is whatever had not been written yet.
    writeFileSync(join(dataDir, "service.creating"), "");
    rmSync(join(dataDir, "PG_VERSION"));
    rmSync(join(dataDir, "global/pg_control"));
    const uses: ImageUse[] = [];
    const database = await openPglite(dataDir, { onImage: (use) => uses.push(use) });
    try {
      expect(uses).toEqual([{ image: true, migrations: migrationsOf(migrationsFolder).length }]);
      expect(await database.migrate()).toBe(0);
      const [row] = await database.rows<{ n: number }>(sql`select count(*)::int as n from clients`);
      expect(row!.n).toBe(0);
    } finally {
      await database.close();
    }
  });

  test("that holds other files and no cluster is refused, and nothing is written into it", async () => {
    const dataDir = join(root, "foreign");
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "notes.txt"), "mine");
    expect(() => claimDataDir(dataDir)).toThrow(/is not empty and holds no embedded database/);
    expect(readdirSync(dataDir)).toEqual(["notes.txt"]);
  });

  test("whose image cannot be read is created by initdb, without what the extraction left", async () => {
    const dataDir = join(root, "unreadable");
    const damaged = join(root, "damaged.tar.gz");
    writeFileSync(damaged, readFileSync(resourcePath(imageTarball)).subarray(0, 100_000));
    const claim = claimDataDir(dataDir, migrationsFolder, { tarball: damaged });
    const use = await claim.created;
    expect(use).toMatchObject({ image: false });
    expect((use as { reason: string }).reason).toContain("could not be read");
    expect(readdirSync(dataDir).sort()).toEqual(["service.creating", "service.pid"]);
    const uses: ImageUse[] = [];
    const database = await openPglite(dataDir, { claim, onImage: (u) => uses.push(u) });
    try {
      expect(await database.migrate()).toBe(migrationsOf(migrationsFolder).length);
    } finally {
      await database.close();
    }
    expect(existsSync(join(dataDir, "service.creating"))).toBe(false);
    expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);
  });

  test("whose initdb was cut short (PG_VERSION written, the creation's marker still there) is created again", async () => {
    const dataDir = join(root, "initdb-cut");
    mkdirSync(join(dataDir, "base/1"), { recursive: true });
    writeFileSync(join(dataDir, "PG_VERSION"), "17\n");
    writeFileSync(join(dataDir, "base/1/1259"), "partial");
    writeFileSync(join(dataDir, "service.creating"), "");
    const uses: ImageUse[] = [];
    const database = await openPglite(dataDir, { onImage: (u) => uses.push(u) });
    try {
      expect(uses).toEqual([{ image: true, migrations: migrationsOf(migrationsFolder).length }]);
      expect(await database.migrate()).toBe(0);
    } finally {
      await database.close();
    }
    expect(existsSync(join(dataDir, "service.creating"))).toBe(false);
  });

  test("with an image that does not match drizzle/ is created by initdb and migrated, as before the image", async () => {
    const dataDir = join(root, "mismatch");
    const folder = join(root, "migrations-changed");
    cpSync(migrationsFolder, folder, { recursive: true });
    const last = migrationsOf(migrationsFolder).at(-1)!.tag;
    writeFileSync(join(folder, `${last}.sql`), `${readFileSync(join(folder, `${last}.sql`), "utf8")}\n-- changed after the image was written\n`);
    const uses: ImageUse[] = [];
    const database = await openPglite(dataDir, { migrationsFolder: folder, onImage: (use) => uses.push(use) });
    try {
      expect(uses).toEqual([{ image: false, reason: `migration ${last} differs from the image's` }]);
      expect(await database.migrate()).toBe(migrationsOf(folder).length);
      expect(await database.migrationsApplied()).toBe(true);
    } finally {
      await database.close();
    }
  });

  test("from an image behind drizzle/ gets the later migrations at start, as does an existing DATA_DIR later", async () => {
    const dataDir = join(root, "behind");
    const newer = folderWithExtra(migrationsFolder, "9000_image_probe", "create table image_probe (id int);");
    const uses: ImageUse[] = [];
    const database = await openPglite(dataDir, { migrationsFolder: newer, onImage: (use) => uses.push(use) });
    try {
      expect(uses).toEqual([{ image: true, migrations: migrationsOf(migrationsFolder).length }]);
      expect(await database.migrationsApplied()).toBe(false);
      expect(await database.migrate()).toBe(1);
      expect(await database.migrationsApplied()).toBe(true);
      await database.rows(sql`insert into image_probe values (1)`);
    } finally {
      await database.close();
    }
    // An upgrade: the same DATA_DIR started by a release with one more migration.
    const newest = folderWithExtra(newer, "9001_image_probe_2", "alter table image_probe add column note text;");
    const upgraded = await openPglite(dataDir, { migrationsFolder: newest, onImage: (use) => uses.push(use) });
    try {
      expect(uses.length).toBe(1);
      expect(await upgraded.migrate()).toBe(1);
      const [row] = await upgraded.rows<{ n: number }>(sql`select count(*)::int as n from image_probe where note is null`);
      expect(row!.n).toBe(1);
    } finally {
      await upgraded.close();
    }
  });
});
