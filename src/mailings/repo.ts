/** Mailing rows through Drizzle's builder, and the derived status (SPEC §4). */
import { and, asc, eq, gt, isNull, type Placeholder, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { prepared } from "../db/prepared";
import { mailings } from "../db/schema";
import type { PlannableMailing } from "../dispatch/plan";
import type { MailingStatus, MailingView } from "./model";
import { parseWallTime } from "../time/wall-time";

export type MailingRow = typeof mailings.$inferSelect;
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type Reader = Db | Tx;

/**
 * The status is derived, never stored: cancelled and paused are flags; otherwise `scheduled` until
 * the start is reached in the earliest zone (UTC+14), `finished` once the end has passed in the
 * latest zone (UTC−12, `ends_at`), `running` in between — even with nothing left to send, because a
 * client added or changed later in a zone whose window is still open is planned and sent (SPEC §4).
 * `pending` and `closes_at` tell such a mailing apart.
 */
export function statusExpression(now: Date | Placeholder): SQL<MailingStatus> {
  const at = now instanceof Date ? now.toISOString() : now;
  return sql<MailingStatus>`case
    when ${mailings.cancelledAt} is not null then 'cancelled'
    when ${mailings.paused} then 'paused'
    when ${mailings.startsAt} > ${at}::timestamptz then 'scheduled'
    when ${mailings.endsAt} <= ${at}::timestamptz then 'finished'
    else 'running' end`;
}

/**
 * Messages still to send (scheduled, sending, retrying), from the trigger-maintained counters
 * (exact, transactionally), not the messages: on 10M messages the index probes into `messages` took
 * 18 ms for 1,000 mailings, the counters a fraction of that. The subquery names `"mailings"."id"` in
 * full: Drizzle renders `${mailings.id}` as a bare `"id"` in a single-table select.
 */
const pendingExpression = sql<number>`coalesce((select sum(c.n) from mailing_counts_live c where c.mailing_id = "mailings"."id"
  and c.status in ('scheduled', 'sending', 'retrying')), 0)::int`.mapWith(Number);

export type MailingWithStatus = MailingRow & { status: MailingStatus; pending: number };

export function toView(row: MailingWithStatus): MailingView {
  return {
    id: row.id,
    text: row.text,
    start_time: row.startTime,
    end_time: row.endTime,
    tags_filter: row.tagsFilter,
    codes_filter: row.codesFilter,
    send_window: row.windowFrom && row.windowTo ? { from: row.windowFrom, to: row.windowTo } : null,
    status: row.status,
    pending: row.pending,
    closes_at: row.endsAt.toISOString(),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function toPlannable(row: MailingRow): PlannableMailing {
  return {
    id: row.id,
    start: parseWallTime(row.startTime)!,
    end: parseWallTime(row.endTime)!,
    window: row.windowFrom && row.windowTo ? { from: row.windowFrom, to: row.windowTo } : null,
    tagsFilter: row.tagsFilter,
    codesFilter: row.codesFilter,
    paused: row.paused,
  };
}

export async function findMailing(db: Reader, id: number, now: Date): Promise<MailingWithStatus | null> {
  const [row] = await db
    .select({ ...allColumns, status: statusExpression(now), pending: pendingExpression })
    .from(mailings)
    .where(eq(mailings.id, id))
    .limit(1);
  return row ?? null;
}

/** findMailing outside a transaction, as a prepared query. */
export async function getMailing(db: Db, id: number, now: Date): Promise<MailingWithStatus | null> {
  const query = prepared(db, "mailings_get", () =>
    db
      .select({ ...allColumns, status: statusExpression(sql.placeholder("now")), pending: pendingExpression })
      .from(mailings)
      .where(eq(mailings.id, sql.placeholder("id")))
      .limit(1)
      .prepare("mailings_get"),
  );
  const [row] = await query.execute({ id, now: now.toISOString() });
  return (row as MailingWithStatus | undefined) ?? null;
}

/**
 * getMailing plus its counters summed per status (cancelled left out), in the same prepared
 * statement: one round trip fewer for `GET /api/v1/stats/{id}`.
 */
export async function getMailingWithCounts(
  db: Db,
  id: number,
  now: Date,
): Promise<(MailingWithStatus & { counts: Record<string, number> }) | null> {
  const query = prepared(db, "mailings_get_counts", () =>
    db
      .select({
        ...allColumns,
        status: statusExpression(sql.placeholder("now")),
        counts: sql<string>`(select coalesce(json_object_agg(x.status, x.n), '{}')::text from (
            select c.status, sum(c.n)::int as n from mailing_counts_live c
            where c.mailing_id = "mailings"."id" and c.status <> 'cancelled' group by c.status) x)`,
      })
      .from(mailings)
      .where(eq(mailings.id, sql.placeholder("id")))
      .limit(1)
      .prepare("mailings_get_counts"),
  );
  const [row] = await query.execute({ id, now: now.toISOString() });
  if (!row) return null;
  const counts = JSON.parse(row.counts) as Record<string, number>;
  const pending = (counts.scheduled ?? 0) + (counts.sending ?? 0) + (counts.retrying ?? 0);
  return { ...(row as unknown as MailingRow & { status: MailingStatus }), pending, counts };
}

const allColumns = {
  id: mailings.id,
  text: mailings.text,
  startTime: mailings.startTime,
  endTime: mailings.endTime,
  startsAt: mailings.startsAt,
  endsAt: mailings.endsAt,
  tagsFilter: mailings.tagsFilter,
  codesFilter: mailings.codesFilter,
  windowFrom: mailings.windowFrom,
  windowTo: mailings.windowTo,
  paused: mailings.paused,
  cancelledAt: mailings.cancelledAt,
  createdAt: mailings.createdAt,
  updatedAt: mailings.updatedAt,
};

export async function listMailings(
  db: Db,
  status: MailingStatus | undefined,
  limit: number,
  cursor: number | null,
  now: Date,
): Promise<MailingWithStatus[]> {
  const where: SQL[] = [];
  if (cursor !== null) where.push(gt(mailings.id, cursor));
  if (status) where.push(sql`${statusExpression(now)} = ${status}`);
  return db
    .select({ ...allColumns, status: statusExpression(now), pending: pendingExpression })
    .from(mailings)
    .where(and(...where))
    .orderBy(asc(mailings.id))
    .limit(limit + 1);
}

/** Mailings a new or changed client may still be planned into: not cancelled, not over everywhere. */
export async function loadOpenMailings(db: Reader, now: Date): Promise<PlannableMailing[]> {
  return (await openMailingRows(db, now)).map(toPlannable);
}

/** The rows behind loadOpenMailings (OpenMailingsCache also needs each one's end instant). */
export function openMailingRows(db: Reader, now: Date): Promise<MailingRow[]> {
  return db
    .select()
    .from(mailings)
    .where(and(isNull(mailings.cancelledAt), gt(mailings.endsAt, now)));
}
