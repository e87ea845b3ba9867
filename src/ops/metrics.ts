/**
 * Prometheus metrics (SPEC §10, issue 13) through prom-client, one registry per app so tests and
 * several apps in one process never share counters.
 *
 * - Sends, their latency and gateway errors are observed by wrapping the gateway (`instrument`):
 *   the dispatcher does not know about metrics. What the dispatcher decides without a send
 *   (expired, cancelled, handed back) is read from its `stats` counters at scrape time.
 * - Messages by status come from the trigger-maintained `mailing_counts` (a few rows per mailing),
 *   never from a count over `messages`. The due backlog is counted through `messages_due_idx`
 *   up to `backlogCap` rows, so its cost does not grow with the backlog, at most every 10 s and
 *   off the scrape's path (backlogCount); the age of the oldest due message is the first entry of
 *   that index, read at every scrape.
 * - HTTP requests are labelled with Elysia's matched route template (`/api/v1/mailings/:id`), never
 *   the raw path; a request that matched no route is labelled `unmatched`.
 */
import { sql } from "drizzle-orm";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { messageStates } from "../dispatch/states";
import type { Gateway, OutgoingMessage, SendResult } from "../gateway/gateway";

/** The due backlog is counted up to this many messages (the gauge then means "at least"). */
export const backlogCap = 100_000;

/** The dispatcher counters read at scrape time (Dispatcher.stats). */
export type DispatcherCounters = { claimed: number; sent: number; retried: number; failed: number; expired: number; dropped: number };

/** A gateway error string reduced to a bounded kind (never the text, which may name hosts). */
export function errorKind(error: string): string {
  if (/timed out/.test(error)) return "timeout";
  if (/aborted by shutdown/.test(error)) return "shutdown";
  if (/unreachable/.test(error)) return "network";
  const status = /HTTP (\d)\d\d/.exec(error);
  if (status) return `http_${status[1]}xx`;
  return "other";
}

export class Metrics {
  readonly registry = new Registry();
  private readonly sends: Counter<"outcome">;
  private readonly sendLatency: Histogram<"outcome">;
  private readonly gatewayErrors: Counter<"kind">;
  private readonly claimBatch: Histogram;
  private readonly http: Histogram<"method" | "route" | "status">;
  private readonly messages: Gauge<"status">;
  private readonly backlog: Gauge;
  private readonly oldestDue: Gauge;
  private readonly dispatcherEvents: Counter<"event">;
  private readonly databaseOk: Gauge;
  private backlogAt = 0;
  private backlogRunning: Promise<void> | null = null;
  private counters: (() => DispatcherCounters | null) | null = null;
  /** the counters as last exported, so the Prometheus counter moves by the difference */
  private exported: Partial<DispatcherCounters> = {};

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    /** how old the due backlog count may be (ms); tests set 0 */
    private readonly backlogMaxAgeMs = 10_000,
  ) {
    const registers = [this.registry];
    processMetrics(registers);
    this.sends = new Counter({ name: "notification_sends_total", help: "Gateway sends by outcome (sent, retry, failed)", labelNames: ["outcome"], registers });
    this.sendLatency = new Histogram({
      name: "notification_send_duration_seconds",
      help: "Gateway send latency by outcome",
      labelNames: ["outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.gatewayErrors = new Counter({
      name: "notification_gateway_errors_total",
      help: "Failed gateway sends by kind (timeout, network, http_4xx, http_5xx, shutdown, other)",
      labelNames: ["kind"],
      registers,
    });
    this.claimBatch = new Histogram({
      name: "notification_claim_batch_size",
      help: "Messages taken per claim",
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers,
    });
    this.http = new Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP requests by method, route template and status",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.messages = new Gauge({ name: "notification_messages", help: "Messages by status (from mailing_counts)", labelNames: ["status"], registers });
    this.backlog = new Gauge({ name: "notification_due_backlog", help: `Messages due now, lapsed claims included (counted up to ${backlogCap}, at most 10 s old)`, registers });
    this.oldestDue = new Gauge({ name: "notification_oldest_due_age_seconds", help: "How long the oldest due message has been waiting (0 when none)", registers });
    this.databaseOk = new Gauge({ name: "notification_metrics_database_ok", help: "1 when this scrape read the database figures, 0 when they are stale (database unreachable)", registers });
    this.dispatcherEvents = new Counter({
      name: "notification_dispatcher_events_total",
      help: "This process's dispatcher counters since start (claimed, sent, retried, failed, expired, dropped)",
      labelNames: ["event"],
      registers,
    });
  }

  /** Reads the dispatcher's counters at scrape time (null: no dispatcher in this process). */
  watchDispatcher(counters: () => DispatcherCounters | null): void {
    this.counters = counters;
  }

  /** Records one claim of `n` messages (a tick may claim several batches). */
  claimed(n: number): void {
    this.claimBatch.observe(n);
  }

  /** A gateway whose sends are counted and timed. */
  instrument(gateway: Gateway): Gateway {
    const sends = this.sends;
    const latency = this.sendLatency;
    const errors = this.gatewayErrors;
    return {
      name: gateway.name,
      async send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
        const started = performance.now();
        const result = await gateway.send(message, signal);
        latency.observe({ outcome: result.outcome }, (performance.now() - started) / 1000);
        sends.inc({ outcome: result.outcome });
        if (result.outcome !== "sent") errors.inc({ kind: errorKind(result.error) });
        return result;
      },
    };
  }

  /** One finished HTTP request; `route` must be a template or a fixed word, never a raw path. */
  request(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }

  /**
   * The Prometheus text, after reading what lives in the database (three indexed statements). When
   * those reads fail (an outage, the moment the process and HTTP figures matter most), the scrape
   * still answers, with the database figures as last read and `notification_metrics_database_ok 0`.
   */
  async render(): Promise<string> {
    try {
      await this.refresh();
      this.databaseOk.set(1);
    } catch {
      this.databaseOk.set(0);
    }
    return this.registry.metrics();
  }

  /**
   * The due backlog, counted at most every `backlogMaxAgeMs` and off the scrape's path once known:
   * walking up to `backlogCap` entries of messages_due_idx takes ~28 ms on a loaded 2-core machine,
   * more than a whole scrape may cost (bench/suites/metrics.ts). A scrape returns the last count and starts
   * a new one when it is older than that; the first scrape waits for it.
   */
  private async backlogCount(): Promise<void> {
    const stale = Date.now() - this.backlogAt >= this.backlogMaxAgeMs;
    if (stale && !this.backlogRunning) {
      const at = this.clock.now().toISOString();
      this.backlogRunning = this.database
        .rows<{ n: number }>(sql`
          select count(*)::int as n from (
            select 1 from messages
            where status in ('scheduled', 'retrying', 'sending') and next_attempt_at <= ${at}::timestamptz
            limit ${backlogCap}) d`)
        .then(([row]) => {
          this.backlog.set(Number(row?.n ?? 0));
          this.backlogAt = Date.now();
        })
        // Nobody awaits a count started by a later scrape: a rejection here would end the process.
        // The gauge keeps its last value; the next scrape tries again.
        .catch(() => {})
        .finally(() => {
          this.backlogRunning = null;
        });
    }
    if (this.backlogAt === 0 && this.backlogRunning) await this.backlogRunning;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async refresh(): Promise<void> {
    const at = this.clock.now().toISOString();
    // One round trip: the counters by status, and the oldest due entry as one more row.
    const [rows] = await Promise.all([
      this.database.rows<{ status: string | null; n: number }>(sql`
        select status, sum(n)::float8 as n from mailing_counts group by status
        union all
        select null, (select extract(epoch from ${at}::timestamptz - next_attempt_at)::float8 from messages
          where status in ('scheduled', 'retrying', 'sending') and next_attempt_at <= ${at}::timestamptz
          order by next_attempt_at limit 1)`),
      this.backlogCount(),
    ]);
    const byStatus = new Map<string, number>();
    let oldestAge = 0;
    for (const row of rows) {
      if (row.status === null) oldestAge = Number(row.n ?? 0);
      else byStatus.set(row.status, Number(row.n));
    }
    for (const status of messageStates) this.messages.set({ status }, byStatus.get(status) ?? 0);
    this.oldestDue.set(Math.max(0, oldestAge));
    const stats = this.counters?.();
    if (stats) {
      for (const [event, n] of Object.entries(stats) as [keyof DispatcherCounters, number][]) {
        const delta = n - (this.exported[event] ?? 0);
        if (delta > 0 || this.exported[event] === undefined) this.dispatcherEvents.inc({ event }, Math.max(0, delta));
        this.exported[event] = n;
      }
    }
  }
}

let eventLoop: ReturnType<typeof monitorEventLoopDelay> | null = null;

/**
 * Process memory, CPU and event-loop lag. prom-client's collectDefaultMetrics costs 12 ms per
 * scrape at the median here (67 ms p95: /proc reads, heap-space statistics), more than the whole
 * scrape budget (5 ms p95), so the few that matter are read from cheap calls instead. The
 * event-loop lag figures cover the time since the previous scrape.
 */
function processMetrics(registers: Registry[]): void {
  // One monitor per process (the event loop is the process's), started with the first registry.
  eventLoop ??= monitorEventLoopDelay({ resolution: 20 });
  eventLoop.enable();
  const loop = eventLoop;
  const memory = new Gauge({ name: "process_memory_bytes", help: "Process memory by kind (rss, heap_total, heap_used, external)", labelNames: ["kind"], registers });
  let cpuExported = 0;
  const cpu = new Counter({
    name: "process_cpu_seconds_total",
    help: "User and system CPU time spent",
    registers,
    collect() {
      const usage = process.cpuUsage();
      const total = (usage.user + usage.system) / 1e6;
      cpu.inc(Math.max(0, total - cpuExported));
      cpuExported = total;
    },
  });
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
    registers,
    collect() {
      const m = process.memoryUsage();
      this.set(m.rss);
      memory.set({ kind: "rss" }, m.rss);
      memory.set({ kind: "heap_total" }, m.heapTotal);
      memory.set({ kind: "heap_used" }, m.heapUsed);
      memory.set({ kind: "external" }, m.external);
    },
  });
  const lag = new Gauge({ name: "nodejs_eventloop_lag_seconds", help: "Event-loop delay since the previous scrape, by statistic (mean, p50, p99, max)", labelNames: ["stat"], registers });
  new Gauge({
    name: "nodejs_eventloop_lag_p99_seconds",
    help: "Event-loop delay, 99th percentile since the previous scrape",
    registers,
    collect() {
      const seconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
      this.set(seconds(loop.percentile(99)));
      lag.set({ stat: "mean" }, seconds(loop.mean));
      lag.set({ stat: "p50" }, seconds(loop.percentile(50)));
      lag.set({ stat: "p99" }, seconds(loop.percentile(99)));
      lag.set({ stat: "max" }, seconds(loop.max));
      loop.reset();
    },
  });
  new Gauge({ name: "process_start_time_seconds", help: "Start time of the process since the epoch, in seconds", registers }).set(
    Math.round((Date.now() - performance.now()) / 1000),
  );
}
