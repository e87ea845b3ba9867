/**
 * Issue 10 (9), first contact with the real process: the embedded database is announced, with
 * DATA_DIR, before it initialises; with no way to sign in the process says once how to get the
 * first credentials; a busy port is a one-line configuration error, not a stack trace.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { embeddedGcBudgetBytes } from "../../src/ops/memory";
import { type Worker, killAll, startWorker } from "../support/processes";
import { waitFor } from "../support/wait";

setDefaultTimeout(120_000);

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

describe("first start on the embedded database", () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), "nst-first-")), "data");
  const workers: Worker[] = [];
  afterAll(async () => {
    await killAll(workers);
    rmSync(join(dataDir, ".."), { recursive: true, force: true });
  });

  /** The service on PGlite in `dataDir`; ADMIN_API_KEY as given ("" = unset). */
  async function start(adminApiKey: string): Promise<Worker> {
    const worker = await startWorker({
      databaseUrl: "",
      providerUrl: "",
      adminApiKey,
      env: { DATA_DIR: dataDir, WORKER: "0" },
      startTimeoutMs: 90_000,
    });
    workers.push(worker);
    await worker.waitForLog((l) => l.msg === "listening");
    return worker;
  }

  test("announces the database before creating it, and says once how to get the first credentials", async () => {
    const worker = await start("");
    const first = worker.lines[0]!;
    expect(first.msg).toContain("creating the embedded database");
    expect(first.data_dir).toBe(dataDir);
    expect(worker.lines.findIndex((l) => l.msg === "database ready")).toBeGreaterThan(0);
    // The embedded process replaced itself (same pid) with JSC's collection budget fixed (ops/memory.ts).
    const environ = readFileSync(`/proc/${worker.pid}/environ`, "utf8").split("\0");
    expect(environ).toContain(`BUN_JSC_gcMaxHeapSize=${embeddedGcBudgetBytes}`);
    // The hint comes just after "listening" (it reads the database without holding up the start).
    await waitFor(() => (worker.stderr().includes("No credentials yet") ? true : undefined), 10_000, "the first-credentials hint");
    await worker.kill("SIGTERM");
    const hints = worker.stderr().split("No credentials yet").length - 1;
    expect(hints, worker.stderr()).toBe(1);
    expect(worker.stderr()).toContain(`http://127.0.0.1:${worker.port}/register`);
    expect(worker.stderr()).toContain("export ADMIN_API_KEY=$(openssl rand -hex 32)");
    expect(worker.stderr()).toContain(`curl -H "Authorization: Bearer $ADMIN_API_KEY" http://127.0.0.1:${worker.port}/api/v1/clients`);
  });

  test("a later start with ADMIN_API_KEY opens the existing database and prints no hint", async () => {
    const worker = await start("first-contact-admin-key-0123456789");
    expect(worker.lines[0]!.msg).toBe("opening the embedded database");
    await worker.kill("SIGTERM");
    expect(worker.stderr()).not.toContain("No credentials yet");
  });

  test("a busy port is found before the database is opened (an unreachable database does not hide it)", async () => {
    const busy = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    try {
      const child = Bun.spawn([process.execPath, "src/main.ts"], {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/tmp",
          // Nothing listens on port 1: opening the database would fail (exit 1, "database start-up failed").
          DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
          PORT: String(busy.port),
          HOST: "127.0.0.1",
          WORKER: "0",
          ADMIN_API_KEY: "first-contact-admin-key-0123456789",
        },
        stdout: "pipe",
        stderr: "pipe",
      });
      const code = await child.exited;
      const stderr = await new Response(child.stderr).text();
      const stdout = await new Response(child.stdout).text();
      expect(code, stderr + stdout).toBe(2);
      expect(stderr.trim().split("\n"), stderr).toEqual([`configuration error: PORT: ${busy.port} is already in use on 127.0.0.1 (stop what uses it or choose another PORT)`]);
      expect(stdout).not.toContain("database");
    } finally {
      busy.stop(true);
    }
  });

  test("a busy port is a one-line configuration error with exit code 2", async () => {
    const busy = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    try {
      const child = Bun.spawn([process.execPath, "src/main.ts"], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", DATA_DIR: dataDir, PORT: String(busy.port), HOST: "127.0.0.1", WORKER: "0", ADMIN_API_KEY: "first-contact-admin-key-0123456789" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const code = await child.exited;
      const stderr = await new Response(child.stderr).text();
      expect(code, stderr).toBe(2);
      expect(stderr.trim().split("\n"), stderr).toEqual([`configuration error: PORT: ${busy.port} is already in use on 127.0.0.1 (stop what uses it or choose another PORT)`]);
    } finally {
      busy.stop(true);
    }
  });
});
