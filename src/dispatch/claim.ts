/**
 * Claiming due messages (SPEC §6). One statement: pick due rows in due order with
 * `FOR UPDATE SKIP LOCKED` (so many processes never block on or double-claim a row), and mark them
 * `sending` with a lease. For a `sending` row, next_attempt_at is the end of its lease, so a row
 * whose worker died becomes due again through the same partial index (messages_due_idx).
 * `attempts` is bumped by every claim and doubles as the claim's fencing token: a result is only
 * written back while the row is still `sending` with the attempts this claim set.
 */
import { type SQL, sql } from "drizzle-orm";
import { intArray } from "../db/arrays";
import { type Executor, rowsOf } from "../db/client";
import type { SendWindow } from "../time/send-window";
import { clientMatches, mailingColumns } from "./plan";

export type ClaimedMessage = {
  id: number;
  mailingId: number;
  clientId: number;
  phone: string;
  attempts: number;
  expiresAt: number;
  /** when this claim's lease runs out (epoch ms) */
  leaseUntil: number;
  /**
   * The state to hand the message back in unsent: the one it was claimed from, and for a row taken
   * over from a worker whose lease ran out, `retrying` only if an earlier send failed.
   */
  waitingStatus: "scheduled" | "retrying";
  /** its client and mailing as the claim statement saw them (re-read later by claim-checks.ts) */
  check: ClaimCheck;
  /**
   * The client's placeholder values (attributes and tag) when the mailing's text had placeholders
   * at claim time; null otherwise (nothing is read for a plain text).
   */
  values: Record<string, string> | null;
};

type Row = {
  id: number;
  mailing_id: number;
  client_id: number;
  phone_number: string;
  attempts: number;
  expires_ms: number;
  waiting_status: "scheduled" | "retrying";
  vals: Record<string, string> | null;
} & CheckRow;

/**
 * The rows `statement` returns (after the common table expressions `ctes`, if any); with `json`
 * (embedded PGlite) as one json_agg value instead of a protocol row each (issue 16, target 3).
 * PGlite decodes every row in this process into a Uint8Array, DataViews and a string per column:
 * garbage that JSC collects late. 290 claims of 345 rows (a 100,000-message mailing) left RSS at
 * 900 MB decoded as rows and 360 MB as one JSON value each, which was faster too (0.7 s against
 * 1.0–1.3 s). PostgreSQL (postgres.js) runs the statement as it is.
 */
async function answerRows<T>(ex: Executor, query: { ctes?: SQL; statement: SQL }, json: boolean): Promise<T[]> {
  const { ctes, statement } = query;
  if (!json) return rowsOf<T>(ex, ctes ? sql`with ${ctes} ${statement}` : statement);
  const answer = ctes ? sql`with ${ctes}, answer as (${statement})` : sql`with answer as (${statement})`;
  const [row] = await rowsOf<{ rows: T[] | string }>(ex, sql`${answer} select coalesce(json_agg(answer), '[]'::json) as rows from answer`);
  return typeof row!.rows === "string" ? (JSON.parse(row!.rows) as T[]) : row!.rows;
}

/**
 * Claims up to `limit` due messages (SPEC §6: `for update skip locked`, the lease in
 * next_attempt_at) and reads each one's client and mailing in the same statement (claimStatement).
 */
export async function claimDue(
  ex: Executor,
  now: Date,
  limit: number,
  leaseSeconds: number,
  options: { json?: boolean } = {},
): Promise<ClaimedMessage[]> {
  const rows = await answerRows<Row>(ex, claimParts(now, limit, leaseSeconds), options.json ?? false);
  return rows.map((r) => ({
    id: r.id,
    mailingId: r.mailing_id,
    clientId: r.client_id,
    phone: r.phone_number,
    attempts: r.attempts,
    expiresAt: Number(r.expires_ms),
    leaseUntil: now.getTime() + leaseSeconds * 1000,
    waitingStatus: r.waiting_status,
    check: checkOf(r),
    values: typeof r.vals === "string" ? JSON.parse(r.vals) : r.vals,
  }));
}

/**
 * The claim statement (exported for the plan test, tests/integration/plan-statistics.test.ts).
 *
 * A claim touches at most CLAIM_BATCH rows, so it looks each one's mailing, client and own row up by
 * key whatever the planner's statistics say: with plain joins, once `messages` was analyzed (after a
 * large plan, plan.ts) the planner expected the whole batch and, at random_page_cost 4, found a
 * sequential scan and hash of every client (and every mailing; and of messages itself while it is
 * small) cheaper than 500 index lookups. Measured (bench/NOTES.md, "claim reads every client"): a
 * 50,000-message mailing, each of its ~145 claims hashed all 50,000 clients, 23–25 ms of PostgreSQL
 * time per claim against 10–12 ms by key. `offset 0` keeps the planner from flattening the lateral
 * subqueries back into joins; the redundant `x.id = any(...)` is estimated at a few rows, so the
 * row itself is reached through messages_pkey.
 */
export function claimStatement(now: Date, limit: number, leaseSeconds: number): SQL {
  const { ctes, statement } = claimParts(now, limit, leaseSeconds);
  return sql`with ${ctes} ${statement}`;
}

/** The claim statement in two parts, for answerRows (its `due` CTE, then the update). */
function claimParts(now: Date, limit: number, leaseSeconds: number): { ctes: SQL; statement: SQL } {
  const at = now.toISOString();
  const leaseUntil = new Date(now.getTime() + leaseSeconds * 1000).toISOString();
  return {
    ctes: sql`due as (
      select id, status, mailing_id, client_id from messages
      where status in ('scheduled', 'retrying', 'sending') and next_attempt_at <= ${at}::timestamptz
      order by next_attempt_at
      limit ${limit}
      for update skip locked
    )`,
    statement: sql`
    update messages x
    set status = 'sending', attempts = x.attempts + 1,
        next_attempt_at = ${leaseUntil}::timestamptz, updated_at = ${at}::timestamptz
    from due
      left join lateral (
        select m.id, m.text, m.paused, m.cancelled_at, m.tags_filter, m.codes_filter
        from mailings m where m.id = due.mailing_id offset 0
      ) m on true
      left join lateral (
        select c.id, c.tag, c.operator_code, c.timezone, c.attributes from clients c where c.id = due.client_id offset 0
      ) c on true
    where x.id = due.id and x.id = any(array(select id from due))
    returning x.id, x.mailing_id, x.client_id, x.phone_number, x.attempts,
      (extract(epoch from x.expires_at) * 1000)::float8 as expires_ms,
      case when due.status <> 'sending' then due.status
           when x.last_error is null then 'scheduled' else 'retrying' end as waiting_status,
      case when strpos(m.text, '{{') > 0 then coalesce(c.attributes, '{}'::jsonb) || jsonb_build_object('tag', c.tag) end as vals,
      ${checkColumns}`,
  };
}

/** What the database says about a claimed message just before its send. */
export type ClaimCheck = {
  /** the client still exists and matches the mailing's current filter */
  clientMatches: boolean;
  /** the client's time zone ("" when the client is gone) */
  timezone: string;
  paused: boolean;
  cancelled: boolean;
  /** the row's due and expiry instants now (epoch ms): a re-plan may have moved them since the claim */
  dueAt: number;
  expiresAt: number;
};

/**
 * Re-reads claimed messages just before they are sent, many at once (SPEC §4, §6): re-planning
 * leaves claimed rows' state to the dispatcher (it moves only their due and expiry instants, read
 * here too), so this is where a deleted or no longer matching client, or a paused or cancelled
 * mailing, is seen. A message absent from the answer is no longer held by its claim (its
 * mailing was deleted with its messages, or another worker took it over).
 *
 * One primary-key lookup per held message, in a plan the statistics cannot change: the lateral
 * subquery (kept apart by `offset 0`) is run for each id. As a plain join it depended on estimates that are wrong most of the time: statistics
 * taken while nothing was `sending` expect one such row, and the prepared statement's generic plan
 * expects ten ids. The planner then scanned all messages (8,000 rows for a read of 400), or compared
 * every held row with every id (250,000 comparisons, 40–100 ms, for a read of 500; auto_explain).
 * The mailing and the client are lateral lookups too: as plain left joins the planner put the
 * mailing's join inside the per-id loop as a hash join, building a hash table and scanning
 * `mailings` once per held row; looked up by key (memoized per mailing), the read cost PostgreSQL
 * 16 instead of 25 µs per row (bench/NOTES.md, "PostgreSQL CPU per message", 2026-11-30).
 */
export async function checkClaims(
  ex: Executor,
  claims: Pick<ClaimedMessage, "id" | "attempts">[],
  options: { json?: boolean } = {},
): Promise<Map<number, ClaimCheck>> {
  const rows = await answerRows<{ id: number } & CheckRow>(
    ex,
    {
      statement: sql`select x.id, ${checkColumns}
        from unnest(${intArray(claims.map((h) => h.id))}::int[], ${intArray(claims.map((h) => h.attempts))}::int[])
          as h(id, attempts)
        cross join lateral (
          select * from messages x where x.id = h.id and x.attempts = h.attempts and x.status = 'sending' offset 0
        ) x
        left join lateral (select * from mailings m where m.id = x.mailing_id offset 0) m on true
        left join lateral (select * from clients c where c.id = x.client_id offset 0) c on true`,
    },
    options.json ?? false,
  );
  return new Map(rows.map((r) => [r.id, checkOf(r)]));
}

type CheckRow = { client_matches: boolean; timezone: string; paused: boolean; cancelled: boolean; check_due_ms: number; check_expires_ms: number };

/**
 * A claimed row's client (`c`) and mailing (`m`), both left-joined, as a ClaimCheck; the filter is
 * plan.ts's, and a phone on the blocklist no longer matches. A row whose mailing is gone (messages
 * have no foreign key) reads as cancelled.
 */
const checkColumns = sql`coalesce(c.timezone, '') as timezone, coalesce(m.paused, false) as paused,
  (m.id is null or m.cancelled_at is not null) as cancelled,
  (c.id is not null and ${clientMatches(mailingColumns)}
    and not exists (select 1 from blocklist b where b.phone_number = x.phone_number)) as client_matches,
  (extract(epoch from x.due_at) * 1000)::float8 as check_due_ms,
  (extract(epoch from x.expires_at) * 1000)::float8 as check_expires_ms`;

function checkOf(r: CheckRow): ClaimCheck {
  return {
    clientMatches: r.client_matches === true,
    timezone: r.timezone,
    paused: r.paused,
    cancelled: r.cancelled,
    dueAt: Number(r.check_due_ms),
    expiresAt: Number(r.check_expires_ms),
  };
}

/** What a dispatcher needs to know of a mailing to send its messages. */
export type MailingState = {
  id: number;
  text: string;
  window: SendWindow | null;
};

/** Current text and send window of the given mailings; a deleted mailing is simply absent. */
export async function loadMailingStates(ex: Executor, ids: number[]): Promise<Map<number, MailingState>> {
  const rows = await rowsOf<{ id: number; text: string; window_from: string | null; window_to: string | null }>(
    ex,
    sql`select id, text, window_from, window_to from mailings where id = any(${intArray(ids)}::int[])`,
  );
  return new Map(
    rows.map((r) => [
      r.id,
      { id: r.id, text: r.text, window: r.window_from && r.window_to ? { from: r.window_from, to: r.window_to } : null },
    ]),
  );
}
