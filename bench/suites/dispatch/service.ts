/**
 * Issue 4, target 1 (a): the service's Dispatcher sends N due messages as real HTTP POSTs to the
 * fake gateway (a separate process), on a fresh database. Wall time from the first claim to every
 * message `sent` (results durable); RSS peak sampled while dispatching.
 *
 *   bun bench/suites/dispatch/service.ts --gateway http://127.0.0.1:4710 --n 200000 --concurrency 100 --claim-batch 500
 *   (--backend pglite for the embedded database, no target; --log-level info to log every send;
 *   --plan: the mailing is created through the service (MailingService.create, which plans its N
 *   messages) inside the timed section, as issue 16 measures it; otherwise the messages are seeded.
 *   Without --concurrency, --gateway-concurrency, --claim-batch: the service's defaults, src/config.ts)
 */
import { loadConfig } from "../../../src/config";
import { openPglite } from "../../../src/db/client";
import { relaunch, relaunchFor } from "../../../src/ops/http-cap";
import { MailingService } from "../../../src/mailings/service";
import { Dispatcher } from "../../../src/dispatch/dispatcher";
import { type Completion, completeBatch } from "../../../src/dispatch/complete";
import { HttpGateway } from "../../../src/gateway/http";
import { systemClock } from "../../../src/clock";
import { createLogger, type Level } from "../../../src/ops/logger";
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../../../src/db/client";
import type { Gateway } from "../../../src/gateway/gateway";
import {
  arg,
  cpuMeter,
  check,
  freshPostgres,
  gatewayAt,
  main,
  rssMonitor,
  seedClients,
  seedClientsAndMailing,
  seedDueMessages,
  statusCounts,
} from "../../support";

await main(async () => {
  const n = Number(arg("n", "2000"));
  // Unset: the service's defaults (src/config.ts with no variables set).
  const defaults = loadConfig({});
  const concurrency = Number(arg("concurrency", String(defaults.sendConcurrency)));
  const claimBatch = Number(arg("claim-batch", String(defaults.claimBatch)));
  const backend = arg("backend", "postgres");
  const gateway = gatewayAt(arg("gateway", "http://127.0.0.1:4710"));
  // GATEWAY_CONCURRENCY: HTTP requests at once, below the dispatcher's slots (unset: the slots).
  const gatewayConcurrency =
    Number(arg("gateway-concurrency", "0")) || (process.argv.includes("--concurrency") ? null : defaults.gatewayConcurrency);
  // As src/main.ts does: past Bun's 256 fetches in flight, this process replaces itself once with
  // BUN_CONFIG_MAX_HTTP_REQUESTS set (src/ops/http-cap.ts).
  const relaunchPlan = relaunchFor(gatewayConcurrency ?? concurrency, process.env, process);
  if (relaunchPlan) throw new Error(`could not lift Bun's fetch cap: ${await relaunch(relaunchPlan)}`);
  // Experiment: per-database PostgreSQL settings (`--pg-set synchronous_commit=off`).
  // Experiment: up to K group commits in flight at once (see pipelineFlushes below).
  const flushes = Number(arg("flushes", "1"));
  const pgSettings = Object.fromEntries(
    arg("pg-set", "")
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=") as [string, string]),
  );
  const gatewayPid = Number(arg("gateway-pid", "0")) || null;

  const fresh: { database: Database; name: string | null; drop(): Promise<void> } =
    backend === "pglite"
      ? await (async () => {
          const database = await openPglite(null);
          await database.migrate();
          return { database, name: null, drop: () => database.close() };
        })()
      : await freshPostgres({ settings: pgSettings });
  const { database } = fresh;
  try {
    const seedStarted = performance.now();
    const plan = process.argv.includes("--plan");
    if (plan) await seedClients(database, n);
    else await seedDueMessages(database, await seedClientsAndMailing(database, n), n);
    // Experiment hook: SQL run on this bench's own database after seeding (e.g. dropping an index
    // or disabling the counter trigger, to measure what each costs per message).
    const setupSql = arg("setup-sql", "");
    if (setupSql) await database.rows(sql.raw(setupSql));
    if (backend === "postgres") await database.rows(sql`vacuum analyze clients, mailings, messages, mailing_counts`);
    const mailingService = new MailingService(database, systemClock, { wake() {}, mailingChanged() {}, clientChanged() {} });
    const seedMs = performance.now() - seedStarted;
    await gateway.reset();

    const trace = process.argv.includes("--trace") ? traceStatements(database) : null;
    const http = new HttpGateway({ baseUrl: gateway.url, token: "bench-token", timeoutMs: 10_000 });
    const dispatcher = new Dispatcher(
      database,
      trace ? trace.wrapGateway(http) : http,
      systemClock,
      // `--log-level info` writes a "send" line per message to stdout, as a service does (issue 10).
      createLogger(arg("log-level", "warn") as Level),
      {
        concurrency,
        ...(gatewayConcurrency ? { gatewayConcurrency } : {}),
        claimBatch,
        leaseSeconds: 60,
        sendTimeoutMs: 10_000,
        retryDelaySeconds: 300,
        tick: null,
      },
    );
    if (flushes > 1) pipelineFlushes(dispatcher, flushes);
    trace?.watch(dispatcher as unknown as { inFlight: number; queue: unknown[] });
    const rssBefore = process.memoryUsage().rss;
    const rss = rssMonitor(process.pid, 25);
    const cpu = cpuMeter(gatewayPid, fresh.name);
    const started = performance.now();
    // --plan: the mailing (start in the past, so every message is due) is created and planned here.
    if (plan) await mailingService.create({ text: "Bench message", start_time: "2020-01-01T00:00:00", end_time: "2099-12-31T23:59:59" });
    const planMs = performance.now() - started;
    await dispatcher.drain();
    const ms = performance.now() - started;
    const rssPeakMb = rss.stop().peakMb;
    const traced = trace?.summary(ms);
    const cpuS = cpu.stop();
    await dispatcher.stop(1000);

    const counts = await statusCounts(database);
    const received = await gateway.received();
    check(counts.sent === n && Object.keys(counts).length === 1, `every message sent: ${JSON.stringify(counts)}`);
    check(received.total === n && received.unique === n, `gateway received each id once: ${JSON.stringify({ ...received, duplicates: received.duplicates.slice(0, 5) })}`);
    check(dispatcher.stats.sent === n, `dispatcher counted ${dispatcher.stats.sent} sends`);
    return {
      ...(traced ? { trace: traced } : {}),
      ...(gatewayConcurrency ? { gatewayConcurrency } : {}),
      ...(flushes > 1 ? { flushes } : {}),
      ...(setupSql ? { setupSql } : {}),
      ...(Object.keys(pgSettings).length > 0 ? { pgSettings } : {}),
      backend,
      n,
      concurrency,
      claimBatch,
      ms: Math.round(ms),
      perSecond: Math.round((n / ms) * 1000),
      ...(plan ? { planMs: Math.round(planMs) } : {}),
      handedBack: (dispatcher as unknown as { handedBack: number }).handedBack,
      seedMs: Math.round(seedMs),
      rssBeforeMb: Math.round((rssBefore / 1024 / 1024) * 10) / 10,
      rssPeakMb,
      cpuS,
    };
  } finally {
    await fresh.drop();
  }
});

/**
 * `--trace`: times every statement the dispatcher runs (grouped by kind: claim, complete, expire,
 * mailing states) and every gateway send, by wrapping the Drizzle executor and the gateway (src/
 * is untouched). The summary shows where a message's send slot spends its time.
 */
function traceStatements(database: Database) {
  type Stat = { count: number; ms: number; rows: number; maxMs: number };
  const stats = new Map<string, Stat>();
  const add = (kind: string, ms: number, rows: number) => {
    const s = stats.get(kind) ?? { count: 0, ms: 0, rows: 0, maxMs: 0 };
    s.count++;
    s.ms += ms;
    s.rows += rows;
    s.maxMs = Math.max(s.maxMs, ms);
    stats.set(kind, s);
  };
  const db = database.db as unknown as { execute: (q: SQL) => Promise<unknown>; dialect: { sqlToQuery(q: SQL): { sql: string } } };
  const execute = db.execute.bind(db);
  db.execute = async (q: SQL) => {
    const text = db.dialect.sqlToQuery(q).sql;
    const kind = text.includes("for update skip locked")
      ? "claim"
      : text.includes("jsonb_to_recordset") && text.includes("update messages m")
        ? "complete"
        : text.includes("status = 'expired'")
          ? "expire"
          : text.includes("from mailings")
            ? "mailingStates"
            : "other";
    const started = performance.now();
    const result = await execute(q);
    const rows = Array.isArray(result) ? result.length : ((result as { rows?: unknown[] }).rows?.length ?? 0);
    add(kind, performance.now() - started, kind === "complete" ? rowsIn(text, q) : rows);
    return result;
  };
  function rowsIn(_text: string, q: SQL): number {
    // the completions travel as one JSON parameter: count its objects
    const params = (db.dialect.sqlToQuery(q) as unknown as { params: unknown[] }).params;
    const json = params.find((p) => typeof p === "string" && p.startsWith("[{")) as string | undefined;
    return json ? (JSON.parse(json) as unknown[]).length : 0;
  }
  let inFlight = 0;
  let maxInFlight = 0;
  let inFlightArea = 0;
  let lastChange = performance.now();
  const mark = (delta: number) => {
    const now = performance.now();
    inFlightArea += inFlight * (now - lastChange);
    lastChange = now;
    inFlight += delta;
    maxInFlight = Math.max(maxInFlight, inFlight);
  };
  // The dispatcher's own slot count (sends not yet durable) and local queue, sampled every 5 ms.
  let samples = 0;
  let slotSum = 0;
  let queueSum = 0;
  let emptyQueue = 0;
  let timer: ReturnType<typeof setInterval> | null = null;
  return {
    watch(d: { inFlight: number; queue: unknown[] }) {
      timer = setInterval(() => {
        samples++;
        slotSum += d.inFlight;
        queueSum += d.queue.length;
        if (d.queue.length === 0) emptyQueue++;
      }, 5);
    },
    wrapGateway(inner: Gateway): Gateway {
      return {
        name: inner.name,
        async send(message, signal) {
          mark(1);
          const started = performance.now();
          try {
            return await inner.send(message, signal);
          } finally {
            add("send", performance.now() - started, 1);
            mark(-1);
          }
        },
      };
    },
    summary(wallMs: number) {
      if (timer) clearInterval(timer);
      const round = (x: number) => Math.round(x * 100) / 100;
      return {
        /** mean of the dispatcher's taken slots (in HTTP or waiting for the group commit) */
        meanSlotsTaken: round(slotSum / Math.max(1, samples)),
        meanLocalQueue: round(queueSum / Math.max(1, samples)),
        /** share of samples with nothing claimed waiting to be sent */
        queueEmptyShare: round(emptyQueue / Math.max(1, samples)),
        statements: Object.fromEntries(
          [...stats].map(([kind, s]) => [
            kind,
            { count: s.count, totalMs: Math.round(s.ms), meanMs: round(s.ms / s.count), maxMs: round(s.maxMs), meanRows: round(s.rows / s.count) },
          ]),
        ),
        /** average number of HTTP requests actually in flight over the run (≤ SEND_CONCURRENCY) */
        meanHttpInFlight: round(inFlightArea / wallMs),
        maxHttpInFlight: maxInFlight,
      };
    },
  };
}

/**
 * Experiment, not the service's code: replaces this one dispatcher's `flush` so that up to `k`
 * result batches are being written at once (each on its own pool connection) instead of one. A
 * slot is still released only when its own result is durable; PostgreSQL merges the concurrent
 * commits' WAL flushes. Measures what pipelining the group commit would give src/dispatch.
 */
function pipelineFlushes(dispatcher: Dispatcher, k: number): void {
  type Internals = {
    results: Completion[];
    flushing: Promise<void> | null;
    database: Database;
    clock: { now(): Date };
    release(count: number): void;
    flush(): void;
  };
  const d = dispatcher as unknown as Internals;
  let running = 0;
  d.flush = function flush(this: Internals) {
    while (this.results.length > 0 && running < k) {
      const batch = this.results.splice(0, 2000);
      running++;
      const write = (async () => {
        for (;;) {
          try {
            await completeBatch(this.database.db, batch, this.clock.now());
            break;
          } catch {
            await Bun.sleep(1000);
          }
        }
        this.release(batch.length);
      })().finally(() => {
        running--;
        if (running === 0) this.flushing = null;
        if (this.results.length > 0) this.flush();
      });
      this.flushing = write;
    }
  }.bind(d);
}
