/**
 * Sends over time (the charts of SPEC §9), read from send_minutes (drizzle/0004), never from
 * messages: `sent_at` has no index, and the counters hold one small row per mailing, minute and shard.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client";

export type SendPoint = { at: number; n: number };

const minuteMs = 60_000;
/** Bucket widths a mailing's chart may use, in minutes: 1 min … 1 day. */
const widths = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

/** Sends per minute of all mailings over the `minutes` minutes ending at `now`, every minute present. */
export async function sendsLastMinutes(database: Database, now: Date, minutes = 60): Promise<SendPoint[]> {
  const end = Math.floor(now.getTime() / minuteMs) * minuteMs;
  const start = end - (minutes - 1) * minuteMs;
  const rows = await database.rows<{ at: number; n: number }>(sql`
    select (extract(epoch from minute) * 1000)::float8 as at, sum(n)::float8 as n
    from send_minutes where minute >= ${new Date(start).toISOString()}::timestamptz group by minute`);
  const byMinute = new Map(rows.map((r) => [Number(r.at), Number(r.n)]));
  return Array.from({ length: minutes }, (_, i) => {
    const at = start + i * minuteMs;
    return { at, n: byMinute.get(at) ?? 0 };
  });
}

/**
 * One mailing's sends from its first to its last sending minute, in at most `maxBars` buckets of a
 * round width (1, 2, 5, 10 … minutes, up to a day). Empty when nothing was sent yet.
 */
export async function mailingSends(database: Database, mailingId: number, maxBars = 60): Promise<{ widthMinutes: number; points: SendPoint[] }> {
  const rows = await database.rows<{ at: number; n: number }>(sql`
    select (extract(epoch from minute) * 1000)::float8 as at, sum(n)::float8 as n
    from send_minutes where mailing_id = ${mailingId} group by minute having sum(n) <> 0 order by minute`);
  if (rows.length === 0) return { widthMinutes: 1, points: [] };
  const first = Number(rows[0]!.at);
  const last = Number(rows[rows.length - 1]!.at);
  const span = (last - first) / minuteMs + 1;
  const widthMinutes = widths.find((w) => span / w <= maxBars) ?? Math.ceil(span / maxBars / 1440) * 1440;
  const width = widthMinutes * minuteMs;
  const start = Math.floor(first / width) * width;
  // At least 10 bars: a mailing sent within a minute is one bar among empty ones, not a block
  // filling the chart.
  const count = Math.max(10, Math.floor((last - start) / width) + 1);
  const points = Array.from({ length: count }, (_, i) => ({ at: start + i * width, n: 0 }));
  for (const r of rows) points[Math.floor((Number(r.at) - start) / width)]!.n += Number(r.n);
  return { widthMinutes, points };
}
