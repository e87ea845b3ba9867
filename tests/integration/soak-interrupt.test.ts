/**
 * `bun run soak` is a 30-minute run that people stop with Ctrl-C. Its PostgreSQL cluster runs in a
 * session of its own (pg_ctl), so the signal never reaches it: an interrupted soak left the cluster
 * running, its temporary directory and the heap samples file behind.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createConnection } from "node:net";
import { join } from "node:path";
import { postgresBin } from "../support/pg-cluster";

setDefaultTimeout(120_000);

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

describe.skipIf(!postgresBin())("soak interrupted (needs initdb)", () => {
  test("SIGINT in the middle of a run stops its cluster and removes its files", async () => {
    const { SOAK_HEAP_FILE: _, SOAK_DATABASE_URL: __, ...env } = process.env;
    const child = Bun.spawn([process.execPath, "scripts/soak.ts"], {
      cwd: join(import.meta.dir, "../.."),
      env: { ...env, SOAK_MINUTES: "10", SOAK_SAMPLE_SECONDS: "2" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const stderr = new Response(child.stderr).text();
    let out = "";
    const reader = child.stdout.getReader();
    const decoder = new TextDecoder();
    // Running: the header and at least one sample line (the heap file exists by then).
    while (!/\n\d+\.\d\t/.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`soak ended before its first sample:\n${out}\n${await stderr}`);
      out += decoder.decode(value);
    }
    const port = Number(/cluster of its own \(port (\d+)\)/.exec(out)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(await listening(port)).toBe(true);
    const heapFile = `/tmp/soak-heap-${child.pid}.jsonl`;
    expect(existsSync(heapFile)).toBe(true);
    const clusterDir = readdirSync(tmpdir())
      .filter((d) => d.startsWith("notif-pgcluster-"))
      .map((d) => join(tmpdir(), d))
      .find((d) => existsSync(join(d, "data", "postgresql.auto.conf")) && readFileSync(join(d, "data", "postgresql.auto.conf"), "utf8").includes(`port = ${port}\n`));
    expect(clusterDir).toBeDefined();

    child.kill("SIGINT");
    expect(await child.exited).toBe(130);
    expect(await listening(port)).toBe(false);
    expect(existsSync(heapFile)).toBe(false);
    expect(existsSync(clusterDir!)).toBe(false);
  });
});
