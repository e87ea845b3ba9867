/**
 * `bun run db:embedded-image`: writes the embedded database's image (src/db/embedded-image.ts),
 * assets/embedded-db/cluster.tar.gz and its manifest cluster.json: a PGlite cluster initialised
 * and migrated with drizzle/ as it is now, from which a new DATA_DIR is created at the first start
 * (instead of initdb). Run it after adding or changing a migration or upgrading PGlite;
 * tests/integration/embedded-image.test.ts fails until it is run.
 *
 *   bun run db:embedded-image [--check | --force]
 *     --check: exit 1 when the image is out of date, write nothing
 *     --force: write the image even when its manifest says it is up to date
 *
 * Without --force an up-to-date image is left as it is: a cluster written again differs byte for
 * byte (transaction ids, timestamps), so git would show the tarball as changed after every run.
 */
import { PGlite } from "@electric-sql/pglite";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { embeddedStartParams, migrationsFolder, openPglite } from "../src/db/client";
import {
  imageManifest,
  imageOutOfDate,
  imageTarball,
  installedPgliteVersion,
  migrationsOf,
  readImageManifest,
  type ImageManifest,
} from "../src/db/embedded-image";

const root = fileURLToPath(new URL("../", import.meta.url));
const migrations = migrationsOf(migrationsFolder);
const pglite = installedPgliteVersion();
if (!pglite) throw new Error("cannot read the installed PGlite's version");

if (process.argv.includes("--check")) {
  const outOfDate = imageOutOfDate(readImageManifest(), migrations, pglite);
  console.log(outOfDate ? `out of date: ${outOfDate} (run bun run db:embedded-image)` : "up to date");
  process.exit(outOfDate ? 1 : 0);
}
if (!process.argv.includes("--force") && imageOutOfDate(readImageManifest(), migrations, pglite) === null) {
  console.log(`${imageTarball}: up to date (PGlite ${pglite}, ${migrations.length} migrations), nothing written; --force writes it anyway`);
  process.exit(0);
}

const started = performance.now();
// In memory, with the settings the service starts PGlite with (they are start parameters, not
// stored in the cluster, but initdb runs under them).
const client = new PGlite({ startParams: embeddedStartParams() });
await client.waitReady;
const database = await openPglite(null, { client });
const applied = await database.migrate();
if (applied !== migrations.length) throw new Error(`applied ${applied} migrations, drizzle/ holds ${migrations.length}`);
// What the migrator recorded is what the manifest says.
const recorded = (await client.query<{ hash: string }>("select hash from drizzle.__drizzle_migrations order by created_at")).rows;
if (recorded.map((r) => r.hash).join() !== migrations.map((m) => m.hash).join()) throw new Error("the recorded migrations differ from drizzle/");
// The template databases go: the service works in "postgres" only and never creates a database,
// and each of the two is about 350 files, which a new DATA_DIR would otherwise write at its first
// start (creating a file costs about 0.4 ms on the machines measured: 0.3 s of the start).
await client.exec("update pg_database set datistemplate = false where datname in ('template0', 'template1')");
await client.exec("drop database template0");
await client.exec("drop database template1");
// Everything on disk, nothing left to replay.
await client.exec("checkpoint");
const tarball = await client.dumpDataDir("gzip");
await client.close();

const manifest: ImageManifest = { pglite, migrations };
mkdirSync(dirname(join(root, imageTarball)), { recursive: true });
writeFileSync(join(root, imageTarball), new Uint8Array(await tarball.arrayBuffer()));
writeFileSync(join(root, imageManifest), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `${imageTarball}: ${(tarball.size / 1048576).toFixed(1)} MB, PGlite ${pglite}, ${migrations.length} migrations (last ${migrations.at(-1)?.tag}), ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
