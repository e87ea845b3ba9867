/**
 * Real worker processes for scale-out and crash tests: `bun src/main.ts` spawned directly (not through
 * `bun run start`, whose wrapper would receive the signals and orphan the server), on a free port,
 * with its stdout JSON log lines collected. Every process started here is killed when the test
 * process exits, whatever happened.
 */
import type { Subprocess } from "bun";
import { afterAll } from "bun:test";
import { sql } from "drizzle-orm";
import { fileURLToPath } from "node:url";
import type { Database } from "../../src/db/client";
import type { FakeGateway } from "../../src/gateway/fake-server";
import type { TestDatabase } from "./db";

export { waitFor } from "./wait";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export type Worker = {
  name: string;
  pid: number;
  port: number;
  url: string;
  process: Subprocess<"ignore", "pipe", "pipe">;
  /** parsed JSON log lines in arrival order (only those passing `keepLine`) */
  lines: LogLine[];
  /** how many lines of each `msg` were seen (all lines, kept or not) */
  counts: Map<string, number>;
  /** stdout lines that were not JSON */
  text: string[];
  stderr(): string;
  /** resolves with the exit code (or 128 + signal number) once the process has exited */
  exited: Promise<number>;
  readonly running: boolean;
  /** Date.now() when the exit was observed (null while running) */
  readonly exitedAt: number | null;
  /** Waits until a log line satisfies `predicate`; throws after `timeoutMs` or if the process exits. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs` if it has not exited by then). */
  kill(signal?: "SIGKILL" | "SIGTERM" | "SIGINT", timeoutMs?: number): Promise<ExitInfo>;
  /** HTTP request to this worker with the admin key. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
};

export type ExitInfo = { code: number | null; signal: string | null; elapsedMs: number };

export type WorkerOptions = {
  name?: string;
  databaseUrl: string;
  providerUrl: string;
  adminApiKey?: string;
  /** extra environment (SEND_CONCURRENCY, CLAIM_BATCH, LEASE_SECONDS, TICK, LOG_LEVEL, …) */
  env?: Record<string, string>;
  /** which log lines to keep in `lines` (default: all) */
  keepLine?: (line: LogLine) => boolean;
  startTimeoutMs?: number;
  /** what to run instead of `bun src/main.ts` (the compiled executable) */
  command?: string[];
};

export const ADMIN_API_KEY = "scaleout-test-admin-key-0123456789";

const live = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** A TCP port that was free a moment ago (the kernel picks it; we release it at once). */
export function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** Starts `bun src/main.ts` and waits for `/healthz`; retries on another port if the port was taken. */
export async function startWorker(options: WorkerOptions): Promise<Worker> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options, freePort());
    } catch (error) {
      lastError = error;
      if (!/EADDRINUSE|address already in use|port .* in use/i.test(String(error))) throw error;
    }
  }
  throw lastError;
}

async function startOnce(options: WorkerOptions, port: number): Promise<Worker> {
  const name = options.name ?? `worker-${port}`;
  const adminApiKey = options.adminApiKey ?? ADMIN_API_KEY;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    TZ: process.env.TZ ?? "UTC",
    DATABASE_URL: options.databaseUrl,
    PROVIDER_URL: options.providerUrl,
    PROVIDER_TOKEN: "gw-token",
    PORT: String(port),
    HOST: "127.0.0.1",
    ADMIN_API_KEY: adminApiKey,
    WORKER: "1",
    TICK: "* * * * * *",
    LOG_LEVEL: "info",
    ...options.env,
  };
  const child = Bun.spawn(options.command ?? [process.execPath, "src/main.ts"], {
    cwd: repoRoot,
    env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  live.add(child);

  const lines: LogLine[] = [];
  const counts = new Map<string, number>();
  const text: string[] = [];
  let stderrText = "";
  const keep = options.keepLine ?? (() => true);
  const watchers = new Set<() => void>();

  const onLine = (raw: string) => {
    if (raw === "") return;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(raw) as LogLine;
    } catch {
      text.push(raw);
      return;
    }
    const msg = String(parsed.msg ?? "");
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
    if (keep(parsed)) lines.push(parsed);
    for (const w of watchers) w();
  };

  const stdoutDone = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of child.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    }
    rest += decoder.decode();
    if (rest) onLine(rest);
  })().catch(() => {});
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderrText += decoder.decode(chunk, { stream: true });
  })().catch(() => {});

  let running = true;
  let exitedAt: number | null = null;
  const exited = child.exited.then(async (code) => {
    running = false;
    exitedAt = Date.now();
    live.delete(child);
    // Let the pipes drain so the last log lines are visible to the caller.
    await Promise.race([Promise.all([stdoutDone, stderrDone]), Bun.sleep(2000)]);
    for (const w of watchers) w();
    return code;
  });

  const url = `http://127.0.0.1:${port}`;
  const worker: Worker = {
    name,
    pid: child.pid,
    port,
    url,
    process: child,
    lines,
    counts,
    text,
    stderr: () => stderrText,
    exited,
    get running() {
      return running;
    },
    get exitedAt() {
      return exitedAt;
    },
    waitForLog(predicate, timeoutMs = 30_000) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<LogLine>((resolve, reject) => {
        let seen = lines.length;
        const watcher = () => {
          for (; seen < lines.length; seen++) {
            if (predicate(lines[seen]!)) {
              done();
              resolve(lines[seen]!);
              return;
            }
          }
          if (!running) {
            done();
            reject(new Error(`${name} exited before the awaited log line\n${describeWorker(worker)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: awaited log line not seen within ${timeoutMs} ms\n${describeWorker(worker)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          watchers.delete(watcher);
        };
        watchers.add(watcher);
      });
    },
    async kill(signal = "SIGKILL", timeoutMs = 15_000) {
      const started = performance.now();
      if (running) {
        child.kill(signal);
        const timedOut = await Promise.race([exited.then(() => false), Bun.sleep(timeoutMs).then(() => true)]);
        if (timedOut && running) {
          child.kill("SIGKILL");
          await exited;
        }
      }
      await exited;
      return { code: child.exitCode, signal: child.signalCode == null ? null : String(child.signalCode), elapsedMs: performance.now() - started };
    },
    async request(method, path, body) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminApiKey}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const raw = await response.text();
      let parsed: unknown = raw;
      try {
        parsed = raw ? JSON.parse(raw) : null;
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body: parsed };
    },
  };

  // Wait until it answers /healthz, or fail with what it printed.
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (!running) {
      await exited;
      throw new Error(`${name} exited with code ${child.exitCode} before answering /healthz\n${describeWorker(worker)}`);
    }
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await worker.kill("SIGKILL");
      throw new Error(`${name} did not answer /healthz within ${options.startTimeoutMs ?? 30_000} ms\n${describeWorker(worker)}`);
    }
    await Bun.sleep(50);
  }
  return worker;
}

/** The tail of what a worker printed, for error messages. */
export function describeWorker(worker: Worker): string {
  const tail = worker.lines.slice(-10).map((l) => JSON.stringify(l));
  return [`--- ${worker.name} (pid ${worker.pid}) stdout tail:`, ...worker.text.slice(-10), ...tail, `--- stderr:`, worker.stderr().slice(-2000)].join("\n");
}

/** SIGKILLs every worker still running and waits for them; never throws. */
export async function killAll(workers: Iterable<Worker>): Promise<void> {
  await Promise.all([...workers].map((w) => w.kill("SIGKILL").catch(() => {})));
}

/**
 * What a file of worker-process tests starts (its database, fake gateway and workers), ended after
 * its tests: the workers killed, then the gateway stopped, then the database dropped. Call it in
 * the `describe`; set `tdb` and `gateway` and push the workers as the test starts them.
 */
export function workerFixture(): { tdb?: TestDatabase; gateway?: FakeGateway; workers: Worker[] } {
  const fixture: { tdb?: TestDatabase; gateway?: FakeGateway; workers: Worker[] } = { workers: [] };
  afterAll(async () => {
    await killAll(fixture.workers);
    await fixture.gateway?.stop();
    await fixture.tdb?.drop();
  }, 30_000);
  return fixture;
}

/** Inserts `count` UTC clients with one set-based statement (phones 7910xxxxxxx, operator 910). */
export async function insertClients(database: Database, count: number): Promise<void> {
  await database.rows(
    sql`insert into clients (phone_number, operator_code, tag, timezone)
        select '7910' || lpad(g::text, 7, '0'), '910', '', 'UTC' from generate_series(1, ${count}::int) g`,
  );
}

/** Message counts by status. */
export async function statusCounts(database: Database, mailingId?: number): Promise<Record<string, number>> {
  const rows = await database.rows<{ status: string; n: number }>(
    sql`select status, count(*)::int as n from messages
        ${mailingId === undefined ? sql`` : sql`where mailing_id = ${mailingId}`} group by status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** A wall-clock date-time (`YYYY-MM-DDTHH:MM:SS`) `offsetHours` from now in UTC. */
export function wallTime(offsetHours: number): string {
  return new Date(Date.now() + offsetHours * 3_600_000).toISOString().slice(0, 19);
}

/** Creates a mailing open from a day ago to a day ahead, for every client, through a worker's API. */
export async function createOpenMailing(worker: Worker, text = "hello from the scale-out test"): Promise<number> {
  const r = await worker.request("POST", "/api/v1/mailings", {
    text,
    start_time: wallTime(-24),
    end_time: wallTime(24),
    tags_filter: [],
    codes_filter: [],
  });
  if (r.status !== 201) throw new Error(`creating the mailing answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.id as number;
}

/** Registers a user on a running service (`POST /register`, as a browser does) and returns its session cookie. */
export async function registerSession(url: string, email = "soak@example.com", password = "correct horse battery"): Promise<string> {
  const registered = await fetch(`${url}/register`, {
    method: "POST",
    redirect: "manual",
    headers: { origin: url, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password }),
  });
  return (registered.headers.getSetCookie()[0] ?? "").split(";")[0]!;
}
