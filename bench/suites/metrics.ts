/**
 * Issue 13, item 1 — the cost of a Prometheus scrape on 10,000,000 messages (1,000 mailings ×
 * 10,000 clients; quick: 10 × 2,000): `GET /metrics` through the app (`app.handle`, bearer
 * METRICS_TOKEN checked, every metric family rendered, the three database reads included) on
 * PostgreSQL, p95 ≤ 5 ms over 300 sequential scrapes after a warm-up. The due backlog's capped
 * count is refreshed at most every 10 s outside the scrape (src/ops/metrics.ts); its own cost is
 * measured separately.
 *
 * The data: the statistics suite's (bench/support/fill.ts: half the mailings over; the running ones
 * mostly sent, some failed, expired, retrying, cancelled, scheduled later), with the last 5 %
 * (500,000 messages) due now: the due backlog is larger than the count's cap, so the capped count is
 * measured at its most expensive. (Until 2026-11-29 this suite had its own copy of that fill, without
 * cancelled messages, sent_at or last_error.)
 *
 *   bun bench/suites/metrics.ts [--quick] [--clients 10000] [--mailings 1000] [--scrapes 300] [--keep-db]
 */
import { createApp } from "../../src/app";
import { systemClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { backlogCap } from "../../src/ops/metrics";
import {
  bulkLoad,
  check,
  fillClients,
  fillMailingsAndMessages,
  flag,
  freshPostgres,
  loadAverage,
  one,
  percentile,
  printTable,
  round2,
  standalone,
  verdict,
  type SuiteOptions,
} from "../support";

const token = "bench-metrics-token-0123456789";

/** The value of one sample line (`name{labels} value`). */
function sample(text: string, prefix: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${prefix} `));
  return line ? Number(line.slice(prefix.length + 1)) : Number.NaN;
}

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  const clients = options.quick ? 2_000 : flag(argv, "clients", 10_000);
  const mailings = options.quick ? 10 : flag(argv, "mailings", 1_000);
  const scrapes = options.quick ? 30 : flag(argv, "scrapes", 300);
  const dueMailings = Math.max(1, Math.round(mailings * 0.05));
  const load = loadAverage();
  const db = await freshPostgres({ max: 4 });
  try {
    const genStarted = performance.now();
    await bulkLoad(db, async () => {
      await fillClients(db, clients);
      await fillMailingsAndMessages(db, { clients, mailings, dueMailings });
    });
    const generateS = (performance.now() - genStarted) / 1000;
    const { total, counter_rows } = await one<{ total: number; counter_rows: number }>(db, `
      select (select sum(n) from mailing_counts)::int as total, (select count(*) from mailing_counts)::int as counter_rows`);
    check(total === clients * mailings, `mailing_counts holds ${total} messages, expected ${clients * mailings}`);

    const app = await createApp({
      config: { adminApiKey: null, metricsToken: token },
      database: db.database,
      clock: systemClock,
      logger: memoryLogger("warn"),
      signals: silentSignals,
    });
    const scrape = async () => {
      const started = performance.now();
      const response = await app.handle(new Request("http://localhost/metrics", { headers: { authorization: `Bearer ${token}` } }));
      const text = await response.text();
      const ms = performance.now() - started;
      check(response.status === 200, `GET /metrics answered ${response.status}`);
      return { ms, text };
    };
    for (let i = 0; i < 20; i++) await scrape();
    const first = await scrape();
    const due = dueMailings * clients;
    check(sample(first.text, "notification_due_backlog") === Math.min(due, backlogCap), `due backlog ${sample(first.text, "notification_due_backlog")}, expected ${Math.min(due, backlogCap)}`);
    check(sample(first.text, "notification_oldest_due_age_seconds") >= 3600, "the oldest due message is an hour old");
    const statuses = ["scheduled", "sent", "failed", "expired", "retrying"];
    const byStatus = statuses.reduce((s, st) => s + sample(first.text, `notification_messages{status="${st}"}`), 0);
    const { expected } = await one<{ expected: number }>(db, `select count(*)::int as expected from messages where status = any($1)`, [statuses]);
    check(byStatus === expected, `messages by status add up to ${byStatus}, count(*) says ${expected}`);
    const times: number[] = [];
    for (let i = 0; i < scrapes; i++) times.push((await scrape()).ms);
    const p95 = round2(percentile(times, 95));
    // The capped backlog count runs at most every 10 s, off the scrape's path: its own cost.
    const countMs: number[] = [];
    for (let i = 0; i < (options.quick ? 3 : 20); i++) {
      const started = performance.now();
      await db.sql.unsafe(
        `select count(*)::int from (select 1 from messages where status in ('scheduled', 'retrying', 'sending') and next_attempt_at <= now() limit ${backlogCap}) d`,
      );
      countMs.push(performance.now() - started);
    }
    const result = {
      messages: total,
      counter_rows,
      due,
      generate_s: Math.round(generateS),
      scrape_p50_ms: round2(percentile(times, 50)),
      scrape_p95_ms: p95,
      scrape_max_ms: round2(Math.max(...times)),
      scrape_bytes: first.text.length,
      backlog_count_p50_ms: round2(percentile(countMs, 50)),
    };
    printTable(`GET /metrics on ${total.toLocaleString("en")} messages, ${due.toLocaleString("en")} due (PostgreSQL, in-process app.handle)`, [
      { figure: "data generated (load + indexes + vacuum), s", value: result.generate_s },
      { figure: "mailing_counts rows", value: counter_rows },
      { figure: `scrape p50, ms (${scrapes} scrapes)`, value: result.scrape_p50_ms },
      { figure: "scrape p95, ms", value: p95, target: "≤ 5 ms", verdict: verdict(options.quick, p95 <= 5) },
      { figure: "scrape max, ms", value: result.scrape_max_ms },
      { figure: "scrape size, bytes", value: result.scrape_bytes },
      { figure: `due backlog count (≤ ${backlogCap.toLocaleString("en")}, every 10 s off the scrape), p50 ms`, value: result.backlog_count_p50_ms },
      { figure: "load average at start", value: load },
    ]);
    return result;
  } finally {
    await (!options.quick && argv.includes("--keep-db") ? db.keep() : db.drop());
  }
}

if (import.meta.main) await standalone(run);
