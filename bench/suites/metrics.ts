/**
 * Issue 13, item 1 — the cost of a Prometheus scrape on 10,000,000 messages (1,000 mailings ×
 * 10,000 clients; quick: 10 × 2,000): `GET /metrics` through the app (`app.handle`, bearer
 * METRICS_TOKEN checked, every metric family rendered, the three database reads included) on
 * PostgreSQL, p95 ≤ 5 ms over 300 sequential scrapes after a warm-up. The due backlog's capped
 * count is refreshed at most every 10 s outside the scrape (src/ops/metrics.ts); its own cost is
 * measured separately.
 *
 * The data: messages by status like bench/stats.ts (half the mailings over; the running ones mostly
 * sent, some failed, expired, retrying, scheduled later), with the last 5 % (500,000 messages)
 * due now: the due backlog is larger than the count's cap, so the capped count is measured at its
 * most expensive. Generated set-based through the messages table (the statement triggers keep
 * mailing_counts right), secondary indexes dropped during the load and rebuilt, then VACUUM ANALYZE.
 *
 *   bun bench/metrics.ts [--quick] [--clients 10000] [--mailings 1000] [--scrapes 300] [--keep-db]
 */
import { createApp } from "../src/app";
import { systemClock } from "../src/clock";
import { silentSignals } from "../src/dispatch/signals";
import { memoryLogger } from "../src/ops/logger";
import { backlogCap } from "../src/ops/metrics";
import { check, freshBenchDb, loadAverage, one, percentile, printTable, round2, verdict } from "./lib-service";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const token = "bench-metrics-token-0123456789";

/** The value of one sample line (`name{labels} value`). */
function sample(text: string, prefix: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${prefix} `));
  return line ? Number(line.slice(prefix.length + 1)) : Number.NaN;
}

export async function run(options: { quick: boolean }): Promise<Record<string, unknown>> {
  const clients = options.quick ? 2_000 : flag("clients", 10_000);
  const mailings = options.quick ? 10 : flag("mailings", 1_000);
  const scrapes = options.quick ? 30 : flag("scrapes", 300);
  const dueMailings = Math.max(1, Math.round(mailings * 0.05));
  const chunk = Math.max(1, Math.floor(500_000 / clients));
  const load = loadAverage();
  const db = await freshBenchDb();
  try {
    const genStarted = performance.now();
    await db.sql.unsafe(`set synchronous_commit = off`);
    await db.sql.unsafe(`set maintenance_work_mem = '512MB'`);
    await db.sql.unsafe(`
      insert into clients (phone_number, operator_code, tag, timezone)
      select '79' || lpad(g::text, 9, '0'), '9' || lpad((g % 100)::text, 2, '0'), '', 'UTC'
      from generate_series(1, ${clients}) g`);
    await db.sql.unsafe(`
      insert into mailings (text, start_time, end_time, starts_at, ends_at, tags_filter, codes_filter)
      select 'Bench mailing ' || g, '2025-06-01T09:00:00',
        case when g % 2 = 0 and g <= ${mailings - dueMailings} then '2025-06-02T21:00:00' else '2099-12-30T21:00:00' end,
        '2025-06-01T09:00:00Z'::timestamptz,
        case when g % 2 = 0 and g <= ${mailings - dueMailings} then '2025-06-02T21:00:00Z'::timestamptz else '2099-12-30T21:00:00Z'::timestamptz end,
        '{}', '{}'
      from generate_series(1, ${mailings}) g`);
    const indexes = await db.sql.unsafe<{ indexname: string; indexdef: string }[]>(
      `select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = 'messages' and indexname <> 'messages_pkey'`,
    );
    for (const ix of indexes) await db.sql.unsafe(`drop index ${ix.indexname}`);
    for (let lo = 1; lo <= mailings; lo += chunk) {
      const hi = Math.min(mailings, lo + chunk - 1);
      await db.sql.unsafe(`
        insert into messages (mailing_id, client_id, phone_number, status, attempts, due_at, expires_at, next_attempt_at, created_at, updated_at)
        select mailing_id, client_id, phone_number, status, 0, due_at, expires_at,
          case when status = 'retrying' then now() + interval '1 day' else due_at end, now(), now()
        from (
          select m.id as mailing_id, c.id as client_id, c.phone_number,
            case
              when m.id > ${mailings - dueMailings} then 'scheduled'
              when m.ends_at < now() then case when r < 85 then 'sent' when r < 92 then 'failed' else 'expired' end
              else case when r < 55 then 'sent' when r < 60 then 'failed' when r < 63 then 'expired'
                        when r < 68 then 'retrying' else 'scheduled' end
            end as status,
            case
              when m.id > ${mailings - dueMailings} then now() - interval '1 hour' + c.id * interval '1 millisecond'
              when m.ends_at >= now() and r >= 68 then now() + interval '30 days'
              else m.starts_at
            end as due_at,
            case when m.ends_at < now() then m.ends_at else '2100-01-01T00:00:00Z'::timestamptz end as expires_at
          from mailings m cross join clients c cross join lateral (select ((c.id * 7919 + m.id * 104729) % 100) as r) x
          where m.id between ${lo} and ${hi}
        ) s`);
    }
    for (const ix of indexes) await db.sql.unsafe(ix.indexdef);
    await db.sql.unsafe(`vacuum analyze clients, mailings, messages, mailing_counts`);
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
    const byStatus = ["scheduled", "sent", "failed", "expired", "retrying"].reduce((s, st) => s + sample(first.text, `notification_messages{status="${st}"}`), 0);
    check(byStatus === clients * mailings, `messages by status add up to ${byStatus}, expected ${clients * mailings}`);
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
    if (!options.quick && process.argv.includes("--keep-db")) {
      await db.sql.end({ timeout: 5 }).catch(() => {});
      await db.database.close().catch(() => {});
      console.log(`kept database: ${db.url}`);
    } else await db.drop();
  }
}

if (import.meta.main) {
  await run({ quick: process.argv.includes("--quick") });
  // --keep-db leaves the admin connection of tests/support/db.ts open; nothing else is pending.
  if (process.argv.includes("--keep-db")) process.exit(0);
}
