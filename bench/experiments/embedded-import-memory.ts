/**
 * Issue 16, target 3: the memory a 100,000-row client import costs on the embedded database,
 * in-process and without the end-to-end suite's noise (its RSS peaks depend on when JSC happens to
 * collect). Opens PGlite on a new temporary DATA_DIR (from the shipped image), imports a CSV of
 * `--rows` clients through ClientImporter, and prints VmRSS / VmHWM before and after.
 * `--no-write` replaces the database writes with nothing (what parsing alone costs).
 *
 *   bun bench/experiments/embedded-import-memory.ts [--rows 100000] [--no-write]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ClientImporter } from "../../src/clients/import";
import { systemClock } from "../../src/clock";
import { openPglite } from "../../src/db/client";
import { arg } from "../support";

const rows = Number(arg("rows", "100000"));
const noWrite = process.argv.includes("--no-write");
const memory = () => {
  const status = readFileSync("/proc/self/status", "utf8");
  const mb = (key: string) => Math.round(Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)![1]) / 1024);
  return { rss_mb: mb("VmRSS"), hwm_mb: mb("VmHWM") };
};

const dir = mkdtempSync(join(tmpdir(), "import-memory-"));
try {
  const database = await openPglite(join(dir, "data"));
  await database.migrate();
  Bun.gc(true);
  const before = memory();
  const importer = new ClientImporter(database, systemClock);
  if (noWrite) (importer as unknown as { write: () => Promise<void> }).write = async () => {};
  let csv = "phone_number,tag,timezone\n";
  for (let i = 1; i <= rows; i++) csv += `79${String(i).padStart(9, "0")},,UTC\n`;
  const started = performance.now();
  const report = await importer.import(Readable.from([Buffer.from(csv)]));
  console.log(JSON.stringify({ rows, write: !noWrite, created: report.created, ms: Math.round(performance.now() - started), before, after: memory() }));
  await database.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
