/**
 * Statistics (SPEC §5). Cancelled messages are excluded everywhere. Counts come from the
 * trigger-maintained `mailing_counts` rows, never from a scan of messages.
 */
import { and, asc, eq, gt, ne, sql, type SQL } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { mailingCounts, mailings, messages } from "../db/schema";
import { type CountedState, countedStates, emptyCounts, messageStates, type MessageState } from "../dispatch/states";
import { findMailing, statusExpression, toView } from "../mailings/repo";
import { invalid, notFound } from "../problems";

export function parseMessageStatus(raw: string | undefined): MessageState | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!(messageStates as readonly string[]).includes(raw)) {
    throw invalid("status", `must be one of ${messageStates.join(", ")}`);
  }
  return raw as MessageState;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export class StatsService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  /** Counts per mailing and status from the trigger-maintained counters (cancelled excluded). */
  private async counts(mailingId: number | null): Promise<Map<number, Record<CountedState, number>>> {
    const where: SQL[] = [ne(mailingCounts.status, "cancelled")];
    if (mailingId !== null) where.push(eq(mailingCounts.mailingId, mailingId));
    const rows = await this.database.db
      .select({ mailingId: mailingCounts.mailingId, status: mailingCounts.status, n: sql<number>`sum(${mailingCounts.n})::int` })
      .from(mailingCounts)
      .where(and(...where))
      .groupBy(mailingCounts.mailingId, mailingCounts.status);
    const byMailing = new Map<number, Record<CountedState, number>>();
    for (const row of rows) {
      const counts = byMailing.get(row.mailingId) ?? emptyCounts();
      if ((countedStates as readonly string[]).includes(row.status)) counts[row.status as CountedState] += row.n;
      byMailing.set(row.mailingId, counts);
    }
    return byMailing;
  }

  async overall() {
    const now = this.clock.now();
    const [list, counts] = await Promise.all([
      this.database.db
        .select({
          id: mailings.id,
          text: mailings.text,
          startTime: mailings.startTime,
          endTime: mailings.endTime,
          status: statusExpression(now),
        })
        .from(mailings)
        .orderBy(asc(mailings.id)),
      this.counts(null),
    ]);
    const total = emptyCounts();
    const byMailing = list.map((m) => {
      const c = counts.get(m.id) ?? emptyCounts();
      for (const s of countedStates) total[s] += c[s];
      return {
        mailing_id: m.id,
        text: m.text,
        status: m.status,
        start_time: m.startTime,
        end_time: m.endTime,
        total: countedStates.reduce((sum, s) => sum + c[s], 0),
        by_status: c,
      };
    });
    return { mailings: list.length, messages: total, by_mailing: byMailing };
  }

  async forMailing(id: number, status: MessageState | undefined, limit: number, cursor: number | null) {
    const now = this.clock.now();
    const row = await findMailing(this.database.db, id, now);
    if (!row) throw notFound("mailing", id);
    const counts = (await this.counts(id)).get(id) ?? emptyCounts();
    const page = await this.messages(id, status, limit, cursor);
    return {
      mailing: toView(row),
      total: countedStates.reduce((sum, s) => sum + counts[s], 0),
      by_status: counts,
      messages: page.items.map((m) => ({
        id: m.id,
        client_id: m.client_id,
        phone_number: m.phone_number,
        status: m.status,
        attempts: m.attempts,
        sent_at: m.sent_at,
        last_error: m.last_error,
      })),
      next_cursor: page.next_cursor,
    };
  }

  /** A page of one mailing's messages, in id order. Cancelled ones only when asked for. */
  async messages(mailingId: number, status: MessageState | undefined, limit: number, cursor: number | null) {
    const where: SQL[] = [eq(messages.mailingId, mailingId)];
    where.push(status ? eq(messages.status, status) : ne(messages.status, "cancelled"));
    if (cursor !== null) where.push(gt(messages.id, cursor));
    const rows = await this.database.db
      .select()
      .from(messages)
      .where(and(...where))
      .orderBy(asc(messages.id))
      .limit(limit + 1);
    const items = rows.slice(0, limit).map((m) => ({
      id: m.id,
      mailing_id: m.mailingId,
      client_id: m.clientId,
      phone_number: m.phoneNumber,
      status: m.status as MessageState,
      attempts: m.attempts,
      due_at: m.dueAt.toISOString(),
      next_attempt_at: m.nextAttemptAt.getTime() === Infinity || Number.isNaN(m.nextAttemptAt.getTime()) ? null : m.nextAttemptAt.toISOString(),
      sent_at: iso(m.sentAt),
      last_error: m.lastError,
      created_at: m.createdAt.toISOString(),
    }));
    return { items, next_cursor: rows.length > limit ? items.at(-1)!.id : null };
  }

  async assertMailing(id: number): Promise<void> {
    const [row] = await this.database.db.select({ id: mailings.id }).from(mailings).where(eq(mailings.id, id));
    if (!row) throw notFound("mailing", id);
  }
}
