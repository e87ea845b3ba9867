/**
 * Big tables for the statistics, metrics and pages suites (10,000,000 messages and more), filled
 * set-based in SQL through the real tables, so the statement triggers of
 * drizzle/0001_message_counters.sql keep `mailing_counts` right. Loading drops the secondary indexes
 * of `messages` and recreates them afterwards (same definitions, read from pg_indexes), then
 * VACUUM ANALYZE, as autovacuum would eventually do.
 */
import type { BenchDatabase } from "./db";

/**
 * Runs `load` with synchronous_commit off and the secondary indexes of `messages` dropped, then
 * rebuilds them and runs VACUUM ANALYZE on `analyze`. Seconds spent loading and rebuilding.
 */
export async function bulkLoad(
  db: BenchDatabase,
  load: () => Promise<void>,
  analyze: string[] = ["clients", "mailings", "messages", "mailing_counts"],
): Promise<{ loadS: number; indexS: number }> {
  const started = performance.now();
  await db.sql.unsafe(`set synchronous_commit = off`);
  await db.sql.unsafe(`set maintenance_work_mem = '512MB'`);
  const indexes = await db.sql.unsafe<{ indexname: string; indexdef: string }[]>(
    `select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = 'messages' and indexname <> 'messages_pkey'`,
  );
  for (const ix of indexes) await db.sql.unsafe(`drop index ${ix.indexname}`);
  await load();
  const loadS = (performance.now() - started) / 1000;
  const ixStarted = performance.now();
  for (const ix of indexes) await db.sql.unsafe(ix.indexdef);
  await db.sql.unsafe(`vacuum analyze ${analyze.join(", ")}`);
  return { loadS, indexS: (performance.now() - ixStarted) / 1000 };
}

/** `n` clients, phones 79000000001…, operator codes 900–999, tags '', vip, new and four time zones. */
export async function fillClients(db: BenchDatabase, n: number): Promise<void> {
  await db.sql.unsafe(`
    insert into clients (phone_number, operator_code, tag, timezone)
    select '79' || lpad(g::text, 9, '0'), '9' || lpad((g % 100)::text, 2, '0'), (array['', 'vip', 'new'])[1 + g % 3],
      (array['UTC', 'Europe/Moscow', 'Asia/Vladivostok', 'America/New_York'])[1 + g % 4]
    from generate_series(1, ${n}) g`);
}

/**
 * The statistics data set: `mailings` mailings and one message per client in each. Even ids are
 * over (January 2025: sent / failed / expired / a few cancelled); odd ids run until 2099 (mostly
 * sent, some failed, expired, retrying later, cancelled, scheduled later); the last `dueMailings`
 * run and are entirely due now (scheduled, due an hour ago). Messages go in ~500,000 rows per INSERT.
 * Call inside bulkLoad, after fillClients.
 */
export async function fillMailingsAndMessages(db: BenchDatabase, options: { clients: number; mailings: number; dueMailings: number }): Promise<void> {
  const { clients, mailings, dueMailings } = options;
  const over = `g % 2 = 0 and g <= ${mailings - dueMailings}`;
  await db.sql.unsafe(`
    insert into mailings (text, start_time, end_time, starts_at, ends_at, tags_filter, codes_filter)
    select 'Bench mailing ' || g,
      case when ${over} then '2025-01-01T09:00:00' else '2025-06-01T09:00:00' end,
      case when ${over} then '2025-01-02T21:00:00' else '2099-12-30T21:00:00' end,
      case when ${over} then '2024-12-31T19:00:00Z'::timestamptz else '2025-05-31T19:00:00Z'::timestamptz end,
      case when ${over} then '2025-01-03T09:00:00Z'::timestamptz else '2099-12-31T09:00:00Z'::timestamptz end,
      '{}', '{}'
    from generate_series(1, ${mailings}) g`);
  const chunk = Math.max(1, Math.floor(500_000 / clients)); // mailings per INSERT
  for (let lo = 1; lo <= mailings; lo += chunk) {
    const hi = Math.min(mailings, lo + chunk - 1);
    // r: a fixed pseudo-random 0–99 per (mailing, client) choosing the status.
    await db.sql.unsafe(`
      insert into messages (mailing_id, client_id, phone_number, status, attempts, due_at, expires_at, next_attempt_at, sent_at, last_error, created_at, updated_at)
      select mailing_id, client_id, phone_number, status,
        case when status in ('sent', 'failed', 'retrying') then 1 else 0 end,
        due_at, expires_at,
        case when status = 'retrying' then now() + interval '1 day' else due_at end,
        case when status = 'sent' then due_at + interval '2 seconds' end,
        case when status = 'failed' then 'gateway answered 400' when status = 'retrying' then 'gateway answered 503' end,
        now(), now()
      from (
        select m.id as mailing_id, c.id as client_id, c.phone_number,
          case
            when m.id > ${mailings - dueMailings} then 'scheduled'
            when m.ends_at < now() then
              case when r < 85 then 'sent' when r < 92 then 'failed' when r < 99 then 'expired' else 'cancelled' end
            else
              case when r < 55 then 'sent' when r < 60 then 'failed' when r < 63 then 'expired'
                   when r < 68 then 'retrying' when r < 70 then 'cancelled' else 'scheduled' end
          end as status,
          case
            when m.id > ${mailings - dueMailings} then now() - interval '1 hour' + c.id * interval '1 millisecond'
            when m.ends_at < now() then m.starts_at + interval '14 hours'
            when r >= 70 then now() + interval '30 days'
            else m.starts_at + interval '14 hours'
          end as due_at,
          case when m.ends_at < now() then m.ends_at else '2100-01-01T00:00:00Z'::timestamptz end as expires_at
        from mailings m
          cross join clients c
          cross join lateral (select ((c.id * 7919 + m.id * 104729) % 100) as r) x
        where m.id between ${lo} and ${hi}
        order by m.id, c.id
      ) s`);
  }
}

/** Time zones spread over the whole offset range (UTC+14 … UTC−11) for the generated clients. */
export const benchZones = ["UTC", "Europe/Moscow", "Asia/Vladivostok", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"];

/** A wall-clock date-time (`YYYY-MM-DDTHH:MM:SS`) `offsetHours` from now in UTC. */
export function wallTime(offsetHours: number): string {
  return new Date(Date.now() + offsetHours * 3_600_000).toISOString().slice(0, 19);
}
