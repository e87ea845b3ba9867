/**
 * Embedded PGlite serves one process per DATA_DIR (src/db/embedded-image.ts, lockDataDir): however
 * several processes start on it together, exactly one holds it, also when a process that is gone
 * left its pid file behind (a crash, a power cut: the usual case at a restart).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { claimDataDir } from "../../src/db/embedded-image";
import { tmpdir } from "node:os";
import { join } from "node:path";

setDefaultTimeout(120_000);

const root = mkdtempSync(join(tmpdir(), "nst-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const child = join(import.meta.dir, "../support/claim-child.ts");

/** Starts `count` processes on `dataDir` at once; what each said. */
async function together(dataDir: string, count: number): Promise<string[]> {
  const go = `${dataDir}.go`;
  const procs = Array.from({ length: count }, () => Bun.spawn([process.execPath, child, dataDir, go], { stdout: "pipe", stderr: "inherit" }));
  const readers = procs.map((p) => p.stdout.getReader());
  const decoder = new TextDecoder();
  const said = procs.map(() => "");
  // Once every process waits on the barrier, all are let go at once.
  await Promise.all(
    readers.map(async (reader, i) => {
      while (!said[i]!.includes("ready\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        said[i] += decoder.decode(value);
      }
    }),
  );
  writeFileSync(go, "");
  await Promise.all(
    readers.map(async (reader, i) => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        said[i] += decoder.decode(value);
      }
    }),
  );
  return said.map((s) => s.replace("ready\n", "").trim());
}

/** A pid no process has (the highest pid Linux hands out is 4,194,304). */
const gonePid = 4_194_999;

describe("DATA_DIR's lock", () => {
  test("is held by exactly one of several processes started together on a DATA_DIR left with a stale pid file", async () => {
    const outcomes: string[][] = [];
    for (let round = 0; round < 15; round++) {
      const dataDir = join(root, `stale-${round}`);
      mkdirSync(dataDir, { recursive: true });
      // A cluster already there (nothing to extract), and the pid file of a process that is gone.
      writeFileSync(join(dataDir, "PG_VERSION"), "17\n");
      writeFileSync(join(dataDir, "service.pid"), String(gonePid));
      outcomes.push((await together(dataDir, 4)).sort());
    }
    for (const said of outcomes) expect(said).toEqual(["held", "refused", "refused", "refused"]);
  });

  test("is held by exactly one of several processes started together on a new DATA_DIR", async () => {
    for (let round = 0; round < 3; round++) {
      const said = (await together(join(root, `new-${round}`), 3)).sort();
      expect(said).toEqual(["held", "refused", "refused"]);
    }
  });

  test("is taken despite a guard left by a process killed while it held it, once that guard is stale", () => {
    const dataDir = join(root, "stale-guard");
    mkdirSync(join(dataDir, "service.pid.guard"), { recursive: true });
    writeFileSync(join(dataDir, "PG_VERSION"), "17\n");
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dataDir, "service.pid.guard"), old, old);
    const claim = claimDataDir(dataDir);
    expect(existsSync(join(dataDir, "service.pid.guard"))).toBe(false);
    claim.unlock();
    expect(existsSync(join(dataDir, "service.pid"))).toBe(false);
  });
});
