/**
 * Writing results back (SPEC §6): one statement for a whole batch of results (group commit). Each
 * row is updated only if it is still `sending` under the claim that produced the result; a message
 * cancelled, deleted or re-planned meanwhile stays as it is.
 */
import { type SQL, sql } from "drizzle-orm";
import { intArray } from "../db/arrays";
import { type Executor, rowsOf } from "../db/client";
import type { MessageState } from "./states";

/** The new state of one claimed message. */
export type Completion = {
  id: number;
  /** the attempts value the claim set: the fencing token */
  attempts: number;
  status: Extract<MessageState, "sent" | "retrying" | "failed" | "expired" | "scheduled" | "cancelled">;
  /** for retrying/scheduled: when to try next (ISO, or "infinity" while paused) */
  nextAttemptAt?: string;
  lastError?: string | null;
  /** true when nothing was sent under this claim (handed back, expired, cancelled): its attempt is taken back */
  unsent?: boolean;
  /** for sent: `{provider}:{id}` when the provider named its message (delivery receipts find it by that) */
  providerMessageId?: string;
};

/**
 * Applies a batch of completions (resultStatement); returns how many rows were still held by their
 * claim.
 */
export async function completeBatch(ex: Executor, completions: Completion[], now: Date): Promise<number> {
  if (completions.length === 0) return 0;
  const [row] = await rowsOf<{ n: number }>(ex, resultStatement(completions, now));
  return row?.n ?? 0;
}

/**
 * The result write for a batch: the batch joined to its rows.
 *
 * PostgreSQL's statistics are usually taken while nothing is `sending` (autovacuum, or the ANALYZE
 * after a large planning), so the planner expects one held row. With the ids as a parameter it
 * read that row through messages_mailing_status_idx (`status = 'sending'`) or the primary key, and
 * for one row a nested loop looked as cheap as a hash join: each held row scanned the whole batch again (the
 * function scan keeps its rows after the first pass: the JSON is parsed once, but every pair is
 * compared). A write of 1,783 results compared 3.2 million pairs and took 579 ms instead of 25
 * (bench/NOTES.md, "The result write's quadratic plan"); a dispatcher with thousands of sends in
 * flight writes batches that large, and slower writes made larger batches still. `m.id =
 * any(array(select …))` repeats the join on purpose: an array the statement computes itself is
 * estimated at ten ids, so the rows are read by primary key and hashed, whatever the statistics say
 * (tests/integration/dispatch-plans.test.ts). Turning nested loops off in a transaction of its own
 * would also do, but its three round trips cost 6 % of the loopback benchmark's throughput.
 */
export function resultStatement(completions: Completion[], now: Date): SQL {
  const at = now.toISOString();
  const payload = completions.map((c) => ({
    id: c.id,
    attempts: c.attempts,
    status: c.status,
    next_attempt_at: c.nextAttemptAt ?? null,
    last_error: storableError(c.lastError),
    unsent: c.unsent ?? false,
    // Absent (not null) without one: the probe's payload stays as short as before.
    ...(c.providerMessageId ? { provider_message_id: c.providerMessageId } : {}),
  }));
  // Counted in the statement (as expireOverdue does), not a row back per message: on embedded PGlite
  // each returned row is decoded in this process into garbage JSC collects late (issue 16, target 3).
  return sql`
    with done as (
    update messages m
    set status = r.status,
        attempts = case when r.unsent then m.attempts - 1 else m.attempts end,
        next_attempt_at = coalesce(r.next_attempt_at, m.next_attempt_at),
        sent_at = case when r.status = 'sent' then ${at}::timestamptz else m.sent_at end,
        last_error = case when r.status = 'sent' then null else coalesce(r.last_error, m.last_error) end,
        provider_message_id = coalesce(r.provider_message_id, m.provider_message_id),
        updated_at = ${at}::timestamptz
    from jsonb_to_recordset(${JSON.stringify(payload)}::text::jsonb)
      as r(id int, attempts int, status text, next_attempt_at timestamptz, last_error text, unsent boolean, provider_message_id text)
    where m.id = r.id and m.status = 'sending' and m.attempts = r.attempts
      and m.id = any(array(select unnest(${intArray(completions.map((c) => c.id))}::int[])))
    returning 1)
    select count(*)::int as n from done`;
}

/**
 * Expires waiting messages whose window has closed in their client's zone (SPEC §6): nothing is
 * ever sent after the client-local end. Runs at every tick, through messages_expiry_idx.
 */
export async function expireOverdue(ex: Executor, now: Date): Promise<number> {
  const at = now.toISOString();
  const [row] = await rowsOf<{ n: number }>(
    ex,
    sql`with expired as (
          update messages set status = 'expired', updated_at = ${at}::timestamptz
          where status in ('scheduled', 'retrying') and expires_at <= ${at}::timestamptz
          returning 1)
        select count(*)::int as n from expired`,
  );
  return row?.n ?? 0;
}

/**
 * A gateway's error text as PostgreSQL can store it: without NUL characters (text and jsonb refuse
 * them, and the whole batch would fail) and at most 1,000 characters.
 */
export function storableError(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  return text.replaceAll("\u0000", "").slice(0, 1000);
}
