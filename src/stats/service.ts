/**
 * Statistics (SPEC §5). Cancelled messages are excluded everywhere. Counts come from the
 * trigger-maintained counters (`mailing_counts_live`: folded base + deltas), never from a scan of messages.
 */
import { eq, sql, type SQL } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { mailings } from "../db/schema";
import { type CountedState, countedStates, emptyCounts, messageStates, statsCounts, type MessageState } from "../dispatch/states";
import type { MailingStatus } from "../mailings/model";
import { getMailingWithCounts, statusExpression, toView } from "../mailings/repo";
import { pageOf } from "../http/params";
import { invalid, notFound } from "../problems";

export function parseMessageStatus(raw: string | undefined): MessageState | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!(messageStates as readonly string[]).includes(raw)) {
    throw invalid("status", `must be one of ${messageStates.join(", ")}`);
  }
  return raw as MessageState;
}

import { mailingSends, sendsLastMinutes } from "./sends";
import { exportMessages } from "./export";

export class StatsService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  /**
   * All mailings with their counts, in one statement: the counters pivoted to one row per mailing
   * in SQL and read without Drizzle's row mapping. Mapping ~5,000 rows (1,000 mailings and their
   * per-status counter rows) through Drizzle cost ~20 ms of CPU per request (issue 4, target 4).
   */
  async overall() {
    const now = this.clock.now();
    // Column names as identifiers and each state as a parameter: nothing is pasted into the SQL text.
    const pivot = sql.join(
      countedStates.map((s) => sql`coalesce(sum(c.n) filter (where c.status = ${s}::text), 0)::int as ${sql.identifier(s)}`),
      sql`, `,
    );
    const rows = await this.database.rows<
      { id: number; text: string; start_time: string; end_time: string; status: string } & Record<CountedState, number>
    >(sql`
      select mailings.id, mailings.text, mailings.start_time, mailings.end_time,
        ${statusExpression(now)} as status,
        ${sql.join(countedStates.map((s) => sql`coalesce(k.${sql.identifier(s)}, 0) as ${sql.identifier(s)}`), sql`, `)}
      from mailings
      left join (select c.mailing_id, ${pivot} from mailing_counts_live c group by c.mailing_id) k on k.mailing_id = mailings.id
      order by mailings.id`);
    const overall = emptyCounts();
    const byMailing = rows.map((m) => {
      const states = emptyCounts();
      for (const s of countedStates) {
        states[s] = m[s];
        overall[s] += m[s];
      }
      const { counts: c, total: sum } = statsCounts(states);
      return {
        mailing_id: m.id,
        text: m.text,
        status: m.status as MailingStatus,
        start_time: m.start_time,
        end_time: m.end_time,
        total: sum,
        by_status: c,
      };
    });
    return { mailings: rows.length, messages: statsCounts(overall).counts, by_mailing: byMailing };
  }

  /** A mailing with its per-status counts, without a page of messages (the UI reads its own page). */
  async summary(id: number) {
    const row = await getMailingWithCounts(this.database.db, id, this.clock.now());
    if (!row) throw notFound("mailing", id);
    const counts = emptyCounts();
    for (const s of countedStates) counts[s] = row.counts[s] ?? 0;
    return { mailing: toView(row), total: countedStates.reduce((sum, s) => sum + counts[s], 0), by_status: counts };
  }

  async forMailing(id: number, status: MessageState | undefined, limit: number, cursor: number | null) {
    const now = this.clock.now();
    // Two independent reads at once (on two pooled connections): the latency of one, not two.
    const [row, page] = await Promise.all([
      getMailingWithCounts(this.database.db, id, now),
      this.messages(id, status, limit, cursor),
    ]);
    if (!row) throw notFound("mailing", id);
    const states = emptyCounts();
    for (const s of countedStates) states[s] = row.counts[s] ?? 0;
    const { counts, total } = statsCounts(states);
    return {
      mailing: toView(row),
      total,
      by_status: counts,
      messages: page.items.map((m) => ({
        id: m.id,
        client_id: m.client_id,
        phone_number: m.phone_number,
        status: m.status,
        attempts: m.attempts,
        sent_at: m.sent_at,
        last_error: m.last_error,
        provider_message_id: m.provider_message_id,
      })),
      next_cursor: page.next_cursor,
    };
  }

  /**
   * A page of one mailing's messages, in id order; cancelled ones only when asked for. Written as
   * one short range per status of the (mailing_id, status, id) index, merged: the plain
   * `status <> 'cancelled' order by id` made PostgreSQL walk the primary key (8.4 s on 10M rows,
   * EXPLAIN ANALYZE in bench/suites/stats.ts); this form takes 0.3 ms.
   */
  async messages(mailingId: number, status: MessageState | undefined, limit: number, cursor: number | null) {
    const states = status ? [status] : messageStates.filter((s) => s !== "cancelled");
    const rows = await this.database.rows<PageRow>(sql`
      select m.* from jsonb_array_elements_text(${JSON.stringify(states)}::text::jsonb) as s(status)
      cross join lateral (
        select x.id, x.mailing_id, x.client_id, x.phone_number, x.status, x.attempts, x.last_error, x.provider_message_id,
          ${epochMs(sql`x.due_at`)} as due_ms, ${epochMs(sql`x.next_attempt_at`)} as next_ms,
          ${epochMs(sql`x.sent_at`)} as sent_ms, ${epochMs(sql`x.created_at`)} as created_ms
        from messages x
        where x.mailing_id = ${mailingId} and x.status = s.status
          ${cursor !== null ? sql`and x.id > ${cursor}` : sql``}
        order by x.id limit ${limit + 1}) m
      order by m.id limit ${limit + 1}`);
    return pageOf(rows, limit, (m) => ({
      id: m.id,
      mailing_id: m.mailing_id,
      client_id: m.client_id,
      phone_number: m.phone_number,
      status: m.status as MessageState,
      attempts: m.attempts,
      due_at: msToIso(m.due_ms)!,
      next_attempt_at: msToIso(m.next_ms),
      sent_at: msToIso(m.sent_ms),
      last_error: m.last_error,
      provider_message_id: m.provider_message_id,
      created_at: msToIso(m.created_ms)!,
    }));
  }

  /** A mailing's messages (one status or all) as a CSV stream; 404 first when the mailing is unknown. */
  async exportMessages(mailingId: number, status: MessageState | undefined): Promise<ReadableStream<Uint8Array>> {
    await this.assertMailing(mailingId);
    return exportMessages(this.database, mailingId, status);
  }

  /** Sends per minute of all mailings over the last hour (send_minutes, not messages). */
  sendsLastHour() {
    return sendsLastMinutes(this.database, this.clock.now(), 60);
  }

  /** One mailing's sends over time, in at most 60 bars. */
  sendsOf(mailingId: number) {
    return mailingSends(this.database, mailingId, 60);
  }

  async assertMailing(id: number): Promise<void> {
    const [row] = await this.database.db.select({ id: mailings.id }).from(mailings).where(eq(mailings.id, id));
    if (!row) throw notFound("mailing", id);
  }
}

type PageRow = {
  id: number;
  mailing_id: number;
  client_id: number;
  phone_number: string;
  status: string;
  attempts: number;
  last_error: string | null;
  provider_message_id: string | null;
  due_ms: number | null;
  next_ms: number | null;
  sent_ms: number | null;
  created_ms: number | null;
};

/** An instant as epoch milliseconds (null for null or 'infinity', i.e. a paused message). */
function epochMs(column: SQL): SQL {
  return sql`case when ${column} is null or ${column} = 'infinity' then null else (extract(epoch from ${column}) * 1000)::float8 end`;
}

function msToIso(ms: number | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString();
}
