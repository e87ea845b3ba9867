/**
 * The embedded database's image (issue 16, target 3: `bun run start` to the first page ≤ 2 s).
 *
 * A new DATA_DIR used to start with PGlite's initdb: a second PGlite instance plus the initdb WASM
 * program, about 4.5 s on a quiet machine (20–120 s on a loaded one) and a memory peak (VmHWM) of
 * about 950 MB, then the migrations. Instead the repository ships a cluster that was initialised
 * and migrated once (`bun run db:embedded-image`, scripts/embedded-image.ts), as the tarball PGlite
 * itself writes (`dumpDataDir("gzip")`), and a new DATA_DIR is created from it (`loadDataDir`).
 *
 * Beside the tarball, a manifest names the PGlite version that wrote it and the migrations it holds
 * (tag and SHA-256 of each SQL file, as Drizzle's migrator records them). The image is used only
 * when that PGlite version is the one installed and its migrations are the first ones of drizzle/
 * (the migrations after them are applied at start as on any existing DATA_DIR); otherwise the
 * first start runs initdb as before. tests/integration/embedded-image.test.ts fails when the image is not
 * exactly up to date.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { resourcePath } from "../resources";

export const migrationsFolder = resourcePath("drizzle");

export const imageTarball = "assets/embedded-db/cluster.tar.gz";
export const imageManifest = "assets/embedded-db/cluster.json";
/** PGlite's package.json, for its version (embedded in the compiled executable too: scripts/build.ts). */
export const pglitePackageJson = "node_modules/@electric-sql/pglite/package.json";

export type Migration = { tag: string; hash: string };
export type ImageManifest = { pglite: string; migrations: Migration[] };

/** The migrations of `folder` (drizzle/), in order, hashed as Drizzle's migrator hashes them. */
export function migrationsOf(folder: string): Migration[] {
  const journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, "utf8")) as { entries: { tag: string }[] };
  return journal.entries.map(({ tag }) => ({
    tag,
    hash: createHash("sha256").update(readFileSync(`${folder}/${tag}.sql`, "utf8")).digest("hex"),
  }));
}

/** The installed PGlite's version (null when its package.json cannot be read). */
export function installedPgliteVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(resourcePath(pglitePackageJson), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

/** The shipped image's manifest, or null when there is none. */
export function readImageManifest(): ImageManifest | null {
  const path = resourcePath(imageManifest);
  if (!existsSync(path) || !existsSync(resourcePath(imageTarball))) return null;
  return JSON.parse(readFileSync(path, "utf8")) as ImageManifest;
}

/**
 * Why `manifest` cannot start a new DATA_DIR for `migrations` and `pglite` (null: it can). An image
 * behind drizzle/ can (the rest is migrated at start); one with a migration drizzle/ lacks or holds
 * differently cannot.
 */
export function imageUnusable(manifest: ImageManifest | null, migrations: Migration[], pglite: string | null): string | null {
  if (!manifest) return "no image";
  if (manifest.pglite !== pglite) return `the image was written by PGlite ${manifest.pglite}, ${pglite ?? "an unknown version"} is installed`;
  if (manifest.migrations.length > migrations.length) return "the image holds migrations drizzle/ lacks";
  for (const [i, migration] of manifest.migrations.entries()) {
    const current = migrations[i]!;
    if (current.tag !== migration.tag || current.hash !== migration.hash) return `migration ${migration.tag} differs from the image's`;
  }
  return null;
}

/** Why the shipped image is not exactly up to date with `migrations` and the installed PGlite (null: it is). */
export function imageOutOfDate(manifest: ImageManifest | null, migrations: Migration[], pglite: string | null): string | null {
  const unusable = imageUnusable(manifest, migrations, pglite);
  if (unusable) return unusable;
  if (manifest!.migrations.length < migrations.length) return `the image lacks ${migrations.slice(manifest!.migrations.length).map((m) => m.tag).join(", ")}`;
  return null;
}

/**
 * Creates the cluster of a new DATA_DIR from the shipped image (`tarball`: tests), when it is usable
 * for `folder`; returns how many migrations it holds, or why it was not used. Extracted natively
 * (Bun.Archive, on Bun's threads) rather than through PGlite's `loadDataDir`, which unpacks in
 * JavaScript and writes every file through the WASM file system (about 1 s more and a memory peak
 * of 340 MB, against 40 MB). PG_VERSION is written last, and the creation's marker (written by
 * claimDataDir) removed after it: a start interrupted before extracts again. An image that cannot
 * be read is skipped like a mismatching one (initdb), without what its extraction wrote.
 * The caller holds DATA_DIR's lock.
 */
export async function extractImage(dataDir: string, folder: string, tarball = resourcePath(imageTarball)): Promise<ImageUse> {
  const manifest = readImageManifest();
  const unusable = imageUnusable(manifest, migrationsOf(folder), installedPgliteVersion());
  if (unusable) return { image: false, reason: unusable };
  try {
    const archive = new Bun.Archive(await Bun.file(tarball).bytes());
    // The image was dumped from a running instance: its postmaster.pid is PGlite's own lock, not ours.
    await archive.extract(dataDir, { glob: ["**", "!PG_VERSION", "!postmaster.pid"] });
    await archive.extract(dataDir, { glob: "PG_VERSION" });
  } catch (error) {
    clearCreation(dataDir);
    return { image: false, reason: `the image ${tarball} could not be read (${(error as Error).message ?? error})` };
  }
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    clearCreation(dataDir);
    return { image: false, reason: `the image ${tarball} holds no PG_VERSION` };
  }
  creationDone(dataDir);
  return { image: true, migrations: manifest!.migrations.length };
}

/** How a new DATA_DIR was created: from the shipped image (holding `migrations`), or by initdb and why. */
export type ImageUse = { image: true; migrations: number } | { image: false; reason: string };

/**
 * Written in a new DATA_DIR before its cluster is created (from the image or by initdb) and removed
 * once it is complete: a directory holding it was left by a creation cut short, ours to clear.
 */
const creationMarker = "service.creating";
/** DATA_DIR's entries that are not the cluster's: this service's own, and a file system's lost+found (a volume's root). */
const ownEntries = new Set(["service.pid", "service.pid.guard", creationMarker, "lost+found"]);

/**
 * True when `dataDir` holds a complete cluster: PGlite writes PG_VERSION when it creates one (and
 * the image's extraction writes it last), and the creation's marker is gone.
 */
export function hasCluster(dataDir: string): boolean {
  return existsSync(join(dataDir, "PG_VERSION")) && !existsSync(join(dataDir, creationMarker));
}

/** The cluster of a new DATA_DIR is complete (after the image's extraction or initdb). */
export function creationDone(dataDir: string): void {
  rmSync(join(dataDir, creationMarker), { force: true });
}

/** Removes what a creation wrote in `dataDir` (all but the service's own files). */
function clearCreation(dataDir: string): void {
  for (const name of readdirSync(dataDir)) if (!ownEntries.has(name)) rmSync(join(dataDir, name), { recursive: true, force: true });
}

/**
 * Readies a DATA_DIR without a complete cluster for its creation: one left by a creation cut short
 * (the marker) is cleared; one holding anything else is refused (a mistyped DATA_DIR: the image's
 * twenty-odd folders would be scattered among someone's files); then the marker is written.
 */
function prepareCreation(dataDir: string): void {
  const foreign = readdirSync(dataDir).filter((name) => !ownEntries.has(name));
  if (foreign.length > 0) {
    if (!existsSync(join(dataDir, creationMarker))) {
      throw new Error(
        `DATA_DIR ${resolve(dataDir)} is not empty and holds no embedded database (no PG_VERSION; it holds ${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}): set DATA_DIR to a new or empty directory`,
      );
    }
    clearCreation(dataDir);
  }
  writeFileSync(join(dataDir, creationMarker), "");
}

/** The log line written before PGlite opens DATA_DIR (issue 10, item 9). */
export function embeddedDatabaseLine(dataDir: string): { msg: string; fields: Record<string, unknown> } {
  const path = resolve(dataDir);
  return hasCluster(path)
    ? { msg: "opening the embedded database", fields: { data_dir: path } }
    : { msg: "creating the embedded database (set DATABASE_URL to use PostgreSQL)", fields: { data_dir: path } };
}

/**
 * A DATA_DIR this process holds: `unlock` lets it go; `created` settles once a new directory has
 * been given its cluster from the image (null: the directory had one). main.ts claims DATA_DIR
 * before it loads the rest of the service, so that the extraction runs meanwhile.
 */
export type DataDirClaim = { unlock(): void; created: Promise<ImageUse | null> };

/** Locks `dataDir` (creating it) and, when it holds no cluster yet, starts creating it from the image. */
export function claimDataDir(dataDir: string, folder = migrationsFolder, options: { tarball?: string } = {}): DataDirClaim {
  // Only its owner may read it, as PostgreSQL wants of a data directory (an existing one is left as it is).
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(dataDir);
  const existing = hasCluster(dataDir);
  if (!existing) {
    try {
      prepareCreation(dataDir);
    } catch (error) {
      unlock();
      throw error;
    }
  }
  const created = existing ? Promise.resolve(null) : extractImage(dataDir, folder, options.tarball);
  // Awaited by openPglite; until then a failure must not count as unhandled.
  created.catch(() => {});
  return { unlock, created };
}

/**
 * PGlite keeps its files for one process only: a second process on the same DATA_DIR would corrupt
 * them. A pid file guards the directory; a stale one (its process gone) is taken over.
 *
 * Reading the pid file, judging it and writing ours happen under a guard, a directory created
 * exclusively (mkdir is atomic) and removed at once: without it two processes started together
 * could both take over a stale file (each removing the other's new one) or read a file another
 * had created but not yet written (empty: taken for stale). The guard is held for microseconds; one
 * left by a process killed meanwhile is removed once it is older than `staleGuardMs`.
 */
function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, "service.pid");
  const guard = join(dataDir, "service.pid.guard");
  const staleGuardMs = 5_000;
  for (let waited = 0; ; waited++) {
    try {
      mkdirSync(guard);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = guardAge(guard);
      if (age !== null && age > staleGuardMs) rmSync(guard, { recursive: true, force: true });
      else if (waited > 2 * (staleGuardMs / 5)) throw new Error(`could not lock DATA_DIR ${dataDir} (${guard} stays)`);
      else Bun.sleepSync(5);
    }
  }
  try {
    const pid = existsSync(path) ? Number(readFileSync(path, "utf8").trim()) : 0;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new Error(`DATA_DIR ${dataDir} is in use by process ${pid}; embedded PGlite serves one process (set DATABASE_URL to run several)`);
    }
    writeFileSync(path, String(process.pid));
  } finally {
    rmSync(guard, { recursive: true, force: true });
  }
  return () => rmSync(path, { force: true });
}

/** How old the guard is in ms (null: gone meanwhile). */
function guardAge(guard: string): number | null {
  try {
    return Date.now() - statSync(guard).mtimeMs;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
