/**
 * Claiming due messages (SPEC §6). One statement: pick due rows in due order with
 * `FOR UPDATE SKIP LOCKED` (so many processes never block on or double-claim a row), and mark them
 * `sending` with a lease. For a `sending` row, next_attempt_at is the end of its lease, so a row
 * whose worker died becomes due again through the same partial index (messages_due_idx).
 * `attempts` is bumped by every claim and doubles as the claim's fencing token: a result is only
 * written back while the row is still `sending` with the attempts this claim set.
 */
import { sql } from "drizzle-orm";
import { intArray } from "../db/arrays";
import { type Executor, rowsOf } from "../db/client";

export type ClaimedMessage = {
  id: number;
  mailingId: number;
  clientId: number;
  phone: string;
  attempts: number;
  expiresAt: number;
  /** the client's zone, read only for messages of a mailing with a send window (loadTimezones):
   *  null = not read, "" = the client is gone */
  timezone: string | null;
  /** when this claim's lease runs out (epoch ms) */
  leaseUntil: number;
};

type Row = {
  id: number;
  mailing_id: number;
  client_id: number;
  phone_number: string;
  attempts: number;
  expires_ms: number;
};

export async function claimDue(
  ex: Executor,
  now: Date,
  limit: number,
  leaseSeconds: number,
): Promise<ClaimedMessage[]> {
  const at = now.toISOString();
  const leaseUntil = new Date(now.getTime() + leaseSeconds * 1000).toISOString();
  const rows = await rowsOf<Row>(
    ex,
    sql`
    with due as (
      select id from messages
      where status in ('scheduled', 'retrying', 'sending') and next_attempt_at <= ${at}::timestamptz
      order by next_attempt_at
      limit ${limit}
      for update skip locked
    )
    update messages m
    set status = 'sending', attempts = m.attempts + 1,
        next_attempt_at = ${leaseUntil}::timestamptz, updated_at = ${at}::timestamptz
    from due
    where m.id = due.id
    returning m.id, m.mailing_id, m.client_id, m.phone_number, m.attempts,
      (extract(epoch from m.expires_at) * 1000)::float8 as expires_ms`,
  );
  return rows.map((r) => ({
    id: r.id,
    mailingId: r.mailing_id,
    clientId: r.client_id,
    phone: r.phone_number,
    attempts: r.attempts,
    expiresAt: Number(r.expires_ms),
    timezone: null,
    leaseUntil: now.getTime() + leaseSeconds * 1000,
  }));
}

/** The time zones of the given clients (for send-window checks); a deleted client is absent. */
export async function loadTimezones(ex: Executor, clientIds: number[]): Promise<Map<number, string>> {
  const rows = await rowsOf<{ id: number; timezone: string }>(
    ex,
    sql`select id, timezone from clients where id = any(${intArray(clientIds)}::int[])`,
  );
  return new Map(rows.map((r) => [r.id, r.timezone]));
}

/** What a dispatcher needs to know of a mailing before sending one of its messages. */
export type MailingState = {
  id: number;
  text: string;
  window: { from: string; to: string } | null;
  paused: boolean;
  cancelled: boolean;
};

/** Current state of the given mailings; a deleted mailing is simply absent. */
export async function loadMailingStates(ex: Executor, ids: number[]): Promise<Map<number, MailingState>> {
  const rows = await rowsOf<{
    id: number;
    text: string;
    window_from: string | null;
    window_to: string | null;
    paused: boolean;
    cancelled: boolean;
  }>(
    ex,
    sql`select id, text, window_from, window_to, paused, cancelled_at is not null as cancelled
        from mailings where id in (select jsonb_array_elements_text(${JSON.stringify(ids)}::text::jsonb)::int)`,
  );
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        text: r.text,
        window: r.window_from && r.window_to ? { from: r.window_from, to: r.window_to } : null,
        paused: r.paused,
        cancelled: r.cancelled,
      },
    ]),
  );
}
