/**
 * Shared helpers of the benchmark suite (issue 4): a fresh PostgreSQL database per bench, the fake
 * gateway as a separate process, RSS sampling, percentiles, and the one-line result protocol between
 * a bench child process and bench/run.ts.
 */
import { sql } from "drizzle-orm";
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";
import { type Database, openPostgres } from "../src/db/client";

export const databaseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";

export type BenchDatabase = { database: Database; url: string; name: string; drop(): Promise<void> };

/** Creates a new, empty database on the server of DATABASE_URL; `migrate` applies the service's schema. */
export async function freshPostgres(
  options: { migrate?: boolean; max?: number; settings?: Record<string, string> } = {},
): Promise<BenchDatabase> {
  const name = `nsb_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  // Tell bench/dispatch-suite.ts, so it can drop the database if this process has to be killed.
  process.stdout.write(`${databaseMarker}${name}\n`);
  // Per-database settings (experiments such as synchronous_commit=off), before any session opens.
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    if (!/^[a-z_]+$/.test(key)) throw new Error(`bad setting name ${key}`);
    await admin.unsafe(`alter database ${name} set ${key} = '${value.replace(/'/g, "''")}'`);
  }
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), { max: options.max ?? 10 });
  if (options.migrate !== false) await database.migrate();
  return {
    database,
    url: url.toString(),
    name,
    async drop() {
      await database.close().catch(() => {});
      await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await admin.end({ timeout: 5 });
    },
  };
}

/** N clients (phones 7000000001…) and one open mailing, set-based; returns the mailing id. */
export async function seedClientsAndMailing(database: Database, n: number, text = "Bench message"): Promise<number> {
  await seedClients(database, n);
  return insertMailing(database, text);
}

/** N clients (phones 7000000001…, zone UTC, tag bench), set-based. */
export async function seedClients(database: Database, n: number): Promise<void> {
  await database.rows(sql`
    insert into clients (phone_number, operator_code, tag, timezone)
    select '7' || lpad(g::text, 10, '0'), '900', 'bench', 'UTC' from generate_series(1, ${n}::int) g`);
}

/** One mailing row, open from 2020 to 2099 everywhere, inserted directly. */
export async function insertMailing(database: Database, text: string): Promise<number> {
  const [m] = await database.rows<{ id: number }>(sql`
    insert into mailings (text, start_time, end_time, starts_at, ends_at)
    values (${text}, '2020-01-01T00:00:00', '2099-12-31T23:59:59', '2019-12-31T10:00:00Z', '2100-01-01T11:59:59Z')
    returning id`);
  return m!.id;
}

/**
 * N messages of the mailing, one per client, status `scheduled`, due in the past (in id order, 1 ms
 * apart, all before now), expiring in 2100.
 */
export async function seedDueMessages(database: Database, mailingId: number, n: number): Promise<void> {
  await database.rows(sql`
    insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
    select ${mailingId}, c.id, c.phone_number, 'scheduled',
      now() - interval '1 hour' + c.id * interval '1 millisecond', '2100-01-01T00:00:00Z',
      now() - interval '1 hour' + c.id * interval '1 millisecond'
    from clients c where c.id <= ${n}::int order by c.id`);
}

/** Statuses of all messages, as a map. */
export async function statusCounts(database: Database): Promise<Record<string, number>> {
  const rows = await database.rows<{ status: string; n: number }>(
    sql`select status, count(*)::int as n from messages group by status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** A fake gateway (src/gateway/fake-server.ts) running as its own process, so it has its own event loop. */
export type GatewayProcess = { url: string; pid: number | null; reset(): Promise<void>; received(): Promise<Received>; stop(): Promise<void> };
export type Received = { total: number; unique: number; duplicates: [number, number][] };

/** Starts `bun src/gateway/fake-server.ts` on a free loopback port and waits for its address. */
export async function startGatewayProcess(latencyMs = 0): Promise<GatewayProcess> {
  const proc = Bun.spawn(["bun", "src/gateway/fake-server.ts", "--port", "0", "--latency-ms", String(latencyMs)], {
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "pipe",
    stderr: "inherit",
  });
  // It logs one JSON line with its URL; read until we have it.
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  let url: string | null = null;
  while (!url) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (!chunk || chunk.done) throw new Error(`fake gateway did not start (exit ${proc.exitCode}): ${text}`);
    text += new TextDecoder().decode(chunk.value);
    url = /"url":"([^"]+)"/.exec(text)?.[1] ?? null;
  }
  reader.releaseLock();
  void proc.stdout.cancel().catch(() => {});
  const gateway = { ...gatewayAt(url), pid: proc.pid };
  gateway.stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
  };
  await gateway.received();
  return gateway;
}

/** Attaches to an already running gateway process by URL (a bench child gets it from run.ts). */
export function gatewayAt(url: string): GatewayProcess {
  return {
    url,
    pid: null,
    async reset() {
      await fetch(`${url}/reset`, { method: "POST" }).then((r) => r.arrayBuffer());
    },
    async received() {
      return (await (await fetch(`${url}/received`)).json()) as Received;
    },
    async stop() {},
  };
}

/** Samples this process's RSS every `everyMs` until stopped; returns the peak in MB. */
export function rssSampler(everyMs = 25): { stop(): number; peakMb(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    if (rss > peak) peak = rss;
  }, everyMs);
  return {
    peakMb: () => Math.round((peak / 1024 / 1024) * 10) / 10,
    stop() {
      clearInterval(timer);
      const rss = process.memoryUsage().rss;
      if (rss > peak) peak = rss;
      return Math.round((peak / 1024 / 1024) * 10) / 10;
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Command-line flags of a bench child: `--name value`. */
export function arg(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const i = args.lastIndexOf(`--${name}`); // the last one wins, so a caller can override a default
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}

/** A child prints a line starting with this marker for every database it creates. */
export const databaseMarker = "BENCH_DB ";

/** A child prints exactly one line starting with this marker: its result as JSON. */
export const resultMarker = "BENCH_RESULT ";

export function report(result: Record<string, unknown>): void {
  process.stdout.write(resultMarker + JSON.stringify(result) + "\n");
}

/** A bench child's main: runs `body`, reports errors as `{ok:false}` and sets the exit code. */
export async function main(body: () => Promise<Record<string, unknown>>): Promise<void> {
  try {
    const result = await body();
    report({ ok: true, ...result });
    process.exit(0);
  } catch (error) {
    report({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  }
}

/** Fails the bench when a correctness check does not hold. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Runs at most `limit` of the given async jobs at once (a counting semaphore). */
export function limiter(limit: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    // A finishing job hands its slot straight to the next waiter, so `active` never exceeds `limit`.
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await job();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/**
 * CPU seconds used during a timed section, split by who used them: this process, the fake gateway
 * process (pid given) and PostgreSQL: the backends connected to `databaseName` (their command line
 * names the database; they live for the whole section because the pools keep their connections),
 * or every `postgres` process when no name is given. Server-wide processes (WAL writer,
 * checkpointer) and other sessions' databases are not counted. Linux /proc only; zeros elsewhere.
 */
export function cpuMeter(gatewayPid: number | null, databaseName: string | null = null): { stop(): { self: number; gateway: number; postgres: number; wallS: number } } {
  const tick = 100; // USER_HZ
  const read = (): Map<number, { comm: string; ticks: number }> => {
    const out = new Map<number, { comm: string; ticks: number }>();
    let entries: string[] = [];
    try {
      entries = readdirSync("/proc");
    } catch {
      return out;
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const comm = stat.slice(stat.indexOf("(") + 1, close);
        const fields = stat.slice(close + 2).split(" ");
        out.set(Number(entry), { comm, ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // the process ended meanwhile
      }
    }
    return out;
  };
  const before = read();
  const started = performance.now();
  return {
    stop() {
      const after = read();
      const delta = (pid: number) => ((after.get(pid)?.ticks ?? 0) - (before.get(pid)?.ticks ?? 0)) / tick;
      let postgresTicks = 0;
      for (const [pid, p] of after) {
        if (p.comm !== "postgres") continue;
        if (databaseName) {
          let cmdline = "";
          try {
            cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
          } catch {
            continue;
          }
          if (!cmdline.includes(` ${databaseName} `)) continue;
        }
        postgresTicks += delta(pid);
      }
      const round = (x: number) => Math.round(x * 100) / 100;
      return {
        self: round(delta(process.pid)),
        gateway: gatewayPid ? round(delta(gatewayPid)) : 0,
        postgres: round(postgresTicks),
        wallS: round((performance.now() - started) / 1000),
      };
    },
  };
}
