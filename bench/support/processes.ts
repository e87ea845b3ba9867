/**
 * Helpers of the service-level benchmarks (issue 4, targets 2, 4, 5, 6, 7): a fresh PostgreSQL
 * database per bench, the service spawned as its own process (`bun src/main.ts`, see
 * tests/support/processes.ts), its RSS sampled from /proc/<pid>/status, the fake gateway as a
 * process, wrk runs parsed, and a plain-text table printer.
 */
import postgres from "postgres";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { freshDatabase, type TestDatabase } from "../tests/support/db";
import { freePort, startWorker, type Worker } from "../tests/support/processes";

process.env.DATABASE_URL ||= "postgres://postgres@127.0.0.1:5432/postgres";

export const repoRoot = fileURLToPath(new URL("../", import.meta.url));
export const ADMIN_KEY = "bench-admin-key-0123456789abcdef";

export type BenchDb = TestDatabase & {
  url: string;
  /** a raw postgres.js client on the bench database (one connection, so session settings stick) */
  sql: postgres.Sql;
  drop(): Promise<void>;
};

/** A new migrated PostgreSQL database (tests/support/db.ts); `drop()` removes it. */
export async function freshBenchDb(): Promise<BenchDb> {
  const fresh = await freshDatabase("postgres", { max: 4 });
  const raw = postgres(fresh.url!, { max: 1, onnotice: () => {} });
  return {
    ...fresh,
    url: fresh.url!,
    sql: raw,
    async drop() {
      await raw.end({ timeout: 5 }).catch(() => {});
      await fresh.drop();
    },
  };
}

/** The single row of a query (throws if there is none). */
export async function one<T extends Record<string, unknown>>(db: BenchDb, query: string, params: unknown[] = []): Promise<T> {
  const rows = await db.sql.unsafe<T[]>(query, params as never[]);
  const row = rows[0];
  if (!row) throw new Error(`no row from: ${query}`);
  return row;
}

/** Spawns `bun src/main.ts` against `databaseUrl` and waits for /healthz. */
export function startService(options: {
  databaseUrl: string;
  worker: boolean;
  providerUrl?: string;
  env?: Record<string, string>;
  name?: string;
}): Promise<Worker> {
  return startWorker({
    name: options.name ?? "service",
    databaseUrl: options.databaseUrl,
    // An empty value counts as unset: the built-in sandbox provider.
    providerUrl: options.providerUrl ?? "",
    adminApiKey: ADMIN_KEY,
    env: { WORKER: options.worker ? "1" : "0", LOG_LEVEL: "warn", ...options.env },
    startTimeoutMs: 60_000,
  });
}

/**
 * SIGTERM, then SIGKILL after `timeoutMs`. (Worker.kill() of tests/support leaves a 15 s timer
 * behind that keeps a bench process alive; this one clears its timer.)
 */
export async function stopService(worker: Worker | null, timeoutMs = 20_000): Promise<void> {
  if (!worker || !worker.running) return;
  worker.process.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = await Promise.race([
    worker.process.exited.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    worker.process.kill("SIGKILL");
    await worker.process.exited;
  }
}

/** VmRSS of a process in MB (NaN once it is gone). */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export type RssMonitor = {
  /** peak so far, MB */
  peak(): number;
  /** stops sampling; returns peak, last sample and sample count */
  stop(): { peakMb: number; lastMb: number; samples: number };
};

/** Samples another process's VmRSS every `everyMs` (50–100 ms as the brief asks). */
export function rssMonitor(pid: number, everyMs = 50): RssMonitor {
  let peak = 0;
  let last = NaN;
  let samples = 0;
  const sample = () => {
    const v = rssMb(pid);
    if (Number.isNaN(v)) return;
    last = v;
    samples++;
    if (v > peak) peak = v;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    peak: () => round1(peak),
    stop() {
      clearInterval(timer);
      sample();
      return { peakMb: round1(peak), lastMb: round1(last), samples };
    },
  };
}

/** The fake gateway (src/gateway/fake-server.ts) as its own process. */
export type GatewayProc = { url: string; pid: number; received(): Promise<{ total: number; unique: number }>; stop(): Promise<void> };

export async function startGateway(latencyMs = 0): Promise<GatewayProc> {
  const port = freePort();
  const proc = Bun.spawn([process.execPath, "src/gateway/fake-server.ts", "--port", String(port), "--latency-ms", String(latencyMs)], {
    cwd: repoRoot,
    stdout: "ignore",
    stderr: "inherit",
  });
  process.on("exit", () => {
    try {
      proc.kill("SIGKILL");
    } catch {
      // gone
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const gateway: GatewayProc = {
    url,
    pid: proc.pid,
    async received() {
      return (await (await fetch(`${url}/received`)).json()) as { total: number; unique: number };
    },
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await gateway.received();
      return gateway;
    } catch {
      if (proc.exitCode !== null) throw new Error(`fake gateway exited with ${proc.exitCode}`);
      if (Date.now() > deadline) throw new Error("fake gateway did not start");
      await Bun.sleep(50);
    }
  }
}

/** Spawns `bun <script>` with PORT set and waits until `path` answers 2xx. */
export async function startPlainServer(script: string, path = "/"): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = freePort();
  const proc = Bun.spawn([process.execPath, script], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port) },
    stdout: "ignore",
    stderr: "inherit",
  });
  process.on("exit", () => {
    try {
      proc.kill("SIGKILL");
    } catch {
      // gone
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`${url}${path}`);
      await r.arrayBuffer();
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null) throw new Error(`${script} exited with ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${script} did not start`);
    await Bun.sleep(50);
  }
  return {
    url,
    pid: proc.pid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export type WrkResult = {
  requests: number;
  seconds: number;
  rps: number;
  latency_avg_ms: number;
  p50_ms: number;
  p75_ms: number;
  p90_ms: number;
  p99_ms: number;
  non2xx: number;
  socket_errors: number;
};

/** wrk's duration text (`850.00us`, `1.23ms`, `2.00s`, `1.00m`) in milliseconds. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`unreadable wrk duration "${text}"`);
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "ms" ? v : m[2] === "s" ? v * 1000 : v * 60_000;
}

/** Parses the output of `wrk --latency`. */
export function parseWrk(out: string): WrkResult {
  const need = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output lacks ${what}:\n${out}`);
    return m;
  };
  const total = need(/(\d+) requests in ([\d.]+)(us|ms|s|m)/, "the request count");
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    seconds: wrkMs(total[2]! + total[3]!) / 1000,
    rps: Number(need(/Requests\/sec:\s+([\d.]+)/, "Requests/sec")[1]),
    latency_avg_ms: round2(wrkMs(need(/Latency\s+([\d.]+(?:us|ms|s|m))/, "the average latency")[1]!)),
    p50_ms: round2(wrkMs(need(/50%\s+([\d.]+(?:us|ms|s|m))/, "p50")[1]!)),
    p75_ms: round2(wrkMs(need(/75%\s+([\d.]+(?:us|ms|s|m))/, "p75")[1]!)),
    p90_ms: round2(wrkMs(need(/90%\s+([\d.]+(?:us|ms|s|m))/, "p90")[1]!)),
    p99_ms: round2(wrkMs(need(/99%\s+([\d.]+(?:us|ms|s|m))/, "p99")[1]!)),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socket_errors: errors ? errors.slice(1).reduce((s, x) => s + Number(x), 0) : 0,
  };
}

/** Runs wrk with --latency and returns its parsed figures (and its raw output). */
export async function runWrk(options: {
  url: string;
  seconds: number;
  threads: number;
  connections: number;
  headers?: Record<string, string>;
  script?: string;
  env?: Record<string, string>;
}): Promise<WrkResult & { raw: string }> {
  const args = ["wrk", "--latency", `-t${options.threads}`, `-c${options.connections}`, `-d${options.seconds}s`, "--timeout", "5s"];
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push("-H", `${k}: ${v}`);
  if (options.script) args.push("-s", options.script);
  args.push(options.url);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...options.env } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${err}${out}`);
  return { ...parseWrk(out), raw: out };
}

/** The 1-minute load average when a bench starts (another job on a 2-core machine skews figures). */
export function loadAverage(): number {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** One authenticated request to the service; answers status, elapsed ms and parsed body. */
export async function timedRequest(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; ms: number; body: any }> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep the text
  }
  return { status: response.status, ms, body: parsed };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round2 = (x: number) => Math.round(x * 100) / 100;

/** Fails the bench (also under --quick) when a functional check does not hold. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export type Row = { figure: string; value: string | number; target?: string; verdict?: string };

/** `pass`/`MISS` for a figure against a bound; `n/a` in quick mode (no timing assertions). */
export function verdict(quick: boolean, ok: boolean): string {
  return quick ? "n/a (quick)" : ok ? "pass" : "MISS";
}

/** Prints a titled, aligned table of figures. */
export function printTable(title: string, rows: Row[]): void {
  const header = { figure: "figure", value: "value", target: "target", verdict: "verdict" };
  const all = [header, ...rows.map((r) => ({ figure: r.figure, value: String(r.value), target: r.target ?? "", verdict: r.verdict ?? "" }))];
  const w = (k: keyof typeof header) => Math.max(...all.map((r) => r[k].length));
  const line = (r: typeof header) =>
    `| ${r.figure.padEnd(w("figure"))} | ${r.value.padStart(w("value"))} | ${r.target.padEnd(w("target"))} | ${r.verdict.padEnd(w("verdict"))} |`;
  const sep = `|${"-".repeat(w("figure") + 2)}|${"-".repeat(w("value") + 2)}|${"-".repeat(w("target") + 2)}|${"-".repeat(w("verdict") + 2)}|`;
  console.log(`\n## ${title}\n`);
  console.log(line(header));
  console.log(sep);
  for (const r of all.slice(1)) console.log(line(r));
  console.log("");
}

/** Time zones spread over the whole offset range (UTC+14 … UTC−11) for the generated clients. */
export const benchZones = ["UTC", "Europe/Moscow", "Asia/Vladivostok", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"];

/** A wall-clock date-time (`YYYY-MM-DDTHH:MM:SS`) `offsetHours` from now in UTC. */
export function wallTime(offsetHours: number): string {
  return new Date(Date.now() + offsetHours * 3_600_000).toISOString().slice(0, 19);
}

export type { Worker };
