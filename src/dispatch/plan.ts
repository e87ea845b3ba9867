/**
 * Planning: turning a mailing and the client directory into messages (SPEC §4, §6). Set-based: the
 * per-zone due and expiry instants are computed with Temporal (schedule.ts), passed in as one JSON
 * parameter and joined to the clients in a single `INSERT … SELECT … ON CONFLICT`. No loop over
 * clients runs in JavaScript.
 *
 * Re-planning uses the same statements: an upsert moves unsent messages (scheduled, retrying,
 * expired, cancelled) to their new due time and state, never touches sent or failed ones, and gives
 * a claimed (`sending`) message only its new due and expiry instants; a second statement cancels
 * waiting messages whose client no longer matches.
 * A claimed message is the dispatcher's: it checks the client and the mailing just before the send
 * (claim.ts `checkClaims`) and cancels it there if it was never handed to the gateway (SPEC §4, §6).
 */
import { type SQL, sql } from "drizzle-orm";
import { intArray } from "../db/arrays";
import { type Executor, rowsOf } from "../db/client";
import type { SendWindow } from "../time/send-window";
import { planZones } from "../time/zone-plan";
import type { Temporal } from "@js-temporal/polyfill";

/** What planning needs to know of a mailing. */
export type PlannableMailing = {
  id: number;
  start: Temporal.PlainDateTime;
  end: Temporal.PlainDateTime;
  window: SendWindow | null;
  tagsFilter: string[];
  codesFilter: string[];
  paused: boolean;
};

const iso = (ms: number) => new Date(ms).toISOString();

/** A filter as two SQL `text[]` expressions: a mailing's columns, or a mailing's values (jsonFilter). */
export type FilterArrays = { tags: SQL; codes: SQL };

/** A mailing row's filter columns, for a mailing aliased `m`. */
export const mailingColumns: FilterArrays = { tags: sql`m.tags_filter`, codes: sql`m.codes_filter` };

/** A filter given as values, each list one JSON parameter. */
export function jsonFilter(mailing: { tagsFilter: string[]; codesFilter: string[] }): FilterArrays {
  const array = (values: string[]) => sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::text::jsonb))`;
  return { tags: array(mailing.tagsFilter), codes: array(mailing.codesFilter) };
}

/**
 * SPEC §4 filter, the one place it is written: the client aliased `c` matches when (no tags or its
 * tag is among them) and (no codes or its operator code is among them).
 */
export function clientMatches(filter: FilterArrays): SQL {
  return sql`((cardinality(${filter.tags}) = 0 or c.tag = any(${filter.tags}))
    and (cardinality(${filter.codes}) = 0 or c.operator_code = any(${filter.codes})))`;
}

/** The client `c`'s phone is on the blocklist (opted out): its messages are planned `cancelled`. */
export const optedOut = sql`exists (select 1 from blocklist b where b.phone_number = c.phone_number)`;
export const optedOutReason = "opted out (blocklist)";

/**
 * Shared tail of the upsert: what a re-plan does to an existing message. Sent and failed messages
 * stay as they are. A cancelled one planned again loses its cancel reason (`last_error`). An expired
 * one whose window is still over stays expired when its phone is blocked (planned `cancelled`): it
 * missed its window before the block, as the blocklist leaves it (blocklist/service.ts), and the
 * statistics keep counting it. A retry keeps its later attempt time. A claimed (`sending`) message keeps its
 * state, lease and phone (the dispatcher's), but takes the new due and expiry instants: the check
 * before its send reads them (claim.ts), and a hand-back or a retry keeps them, so a mailing whose
 * start or end moved while a message was claimed neither sends it outside the new times nor keeps
 * the old ones for later.
 */
const stillExpired = sql`(messages.status = 'expired' and excluded.status = 'cancelled'
  and (excluded.due_at >= excluded.expires_at or excluded.expires_at <= excluded.updated_at))`;
const onConflict = sql`
  on conflict (client_id, mailing_id) do update set
    phone_number = case when messages.status = 'sending' then messages.phone_number else excluded.phone_number end,
    due_at = excluded.due_at,
    expires_at = excluded.expires_at,
    status = case
      when messages.status = 'sending' then 'sending'
      when ${stillExpired} then 'expired'
      when excluded.status in ('expired', 'cancelled') then excluded.status
      when messages.status = 'retrying' then 'retrying'
      else 'scheduled' end,
    last_error = case
      when messages.status = 'sending' or ${stillExpired} then messages.last_error
      when excluded.status = 'cancelled' then excluded.last_error
      -- a cancelled message planned again (unblocked, matching again): its reason no longer holds
      when messages.status = 'cancelled' then null
      else messages.last_error end,
    next_attempt_at = case
      when messages.status = 'sending' then messages.next_attempt_at
      when messages.status = 'retrying' and excluded.status <> 'expired'
        then greatest(
          case when messages.next_attempt_at = 'infinity' then excluded.next_attempt_at
               else messages.next_attempt_at end,
          excluded.next_attempt_at)
      else excluded.next_attempt_at end,
    updated_at = excluded.updated_at
  where messages.status in ('scheduled', 'retrying', 'expired', 'cancelled', 'sending')`;

/**
 * Plans (or re-plans) one mailing for every matching client. Returns how many rows it touched.
 * `fresh`: the mailing has no messages yet, so there is nothing to cancel.
 */
export async function planMailing(
  ex: Executor,
  mailing: PlannableMailing,
  now: Date,
  options: { fresh?: boolean } = {},
): Promise<number> {
  // Client writes wait until this transaction commits, and it waits for those in flight. Without
  // this, a client written while the planning statement runs is invisible to it (its snapshot is
  // older), while the client's own write could not see this uncommitted mailing: neither would
  // plan the message. SHARE mode lets readers and other plannings through. A plan of a million
  // clients holds client writes for its duration (seconds); they wait, they do not fail.
  await holdClientWrites(ex);
  await withoutJit(ex);
  const zoneRows = await rowsOf<{ timezone: string }>(ex, sql`select distinct timezone from clients`);
  const plans = planZones(
    mailing,
    zoneRows.map((r) => r.timezone),
    now.getTime(),
  ).map((p) => ({ zone: p.zone, due_at: iso(p.dueAt), expires_at: iso(p.expiresAt) }));
  const nowIso = now.toISOString();
  const filter = jsonFilter(mailing);
  // Only a count comes back: returning a million ids to JavaScript would cost memory for nothing.
  const [result] = await rowsOf<{ n: number }>(
    ex,
    sql`
    with z as (
      select * from jsonb_to_recordset(${JSON.stringify(plans)}::text::jsonb)
        as z(zone text, due_at timestamptz, expires_at timestamptz)
    ),
    f as (select ${filter.tags} as tags, ${filter.codes} as codes),
    planned as (
    insert into messages (mailing_id, client_id, phone_number, status, last_error, due_at, expires_at, next_attempt_at, created_at, updated_at)
    select ${mailing.id}, c.id, c.phone_number,
      case when ${optedOut} then 'cancelled'
           when z.due_at >= z.expires_at or z.expires_at <= ${nowIso}::timestamptz then 'expired' else 'scheduled' end,
      case when ${optedOut} then ${optedOutReason} end,
      z.due_at, z.expires_at,
      case when ${mailing.paused} then 'infinity'::timestamptz else z.due_at end,
      ${nowIso}::timestamptz, ${nowIso}::timestamptz
    from clients c join z on z.zone = c.timezone, f
    where ${clientMatches({ tags: sql`f.tags`, codes: sql`f.codes` })}
    ${options.fresh ? sql`` : onConflict}
    returning 1)
    select count(*)::int as n from planned`,
  );
  if (!options.fresh) await cancelUnmatched(ex, mailing, now);
  return result?.n ?? 0;
}

/**
 * A plan this large (messages written) is followed by `ANALYZE messages` (refreshStatistics).
 * Until PostgreSQL's statistics know the new rows, it plans the claim (claim.ts) for a few due rows:
 * a bitmap scan of every due row and a sort, for each batch of 500, instead of reading the due
 * index in order. Measured on a fresh mailing of 50,000 messages: 292 ms per claim (sorting all
 * 50,000 on disk) before, about 1 ms after. Autovacuum would analyze eventually (it is off on the
 * benchmark machine, and in production it looks once a minute); the first minute of a large
 * mailing is when it matters. ANALYZE reads a sample of at most 30,000 rows, whatever the size.
 */
export const analyzeAfterRows = 10_000;

/** Refreshes the planner's statistics of `messages` (see analyzeAfterRows). */
export async function refreshStatistics(ex: Executor): Promise<void> {
  await ex.execute(sql`analyze messages`);
}

/**
 * Cancels the mailing's waiting messages whose client is gone or no longer matches the filter.
 * Claimed (`sending`) ones are left to the dispatcher's check before the send.
 */
async function cancelUnmatched(ex: Executor, mailing: PlannableMailing, now: Date): Promise<void> {
  await ex.execute(sql`
    update messages x set status = 'cancelled', updated_at = ${now.toISOString()}::timestamptz
    where x.mailing_id = ${mailing.id}
      and x.status in ('scheduled', 'retrying', 'expired')
      and not exists (select 1 from clients c where c.id = x.client_id and ${clientMatches(jsonFilter(mailing))})`);
}

/** A client as planning sees it. */
export type PlannableClient = { id: number; timezone: string };

/** Plans one client (new or changed): `planClients` for a set of one. */
export function planClient(
  ex: Executor,
  client: PlannableClient,
  openMailings: PlannableMailing[],
  now: Date,
  options: { fresh?: boolean } = {},
): Promise<void> {
  return planClients(ex, [client], openMailings, now, options);
}

/**
 * Plans a set of clients (new or changed, e.g. one batch of a CSV import) into every mailing whose
 * window is still open for them, and cancels their unsent messages in mailings they no longer
 * match. Temporal runs once per (open mailing, distinct zone of the set); the rest is one upsert.
 * `fresh`: the clients are new, so they have no messages to cancel or keep in step.
 */
export async function planClients(
  ex: Executor,
  clients: PlannableClient[],
  openMailings: PlannableMailing[],
  now: Date,
  options: { fresh?: boolean } = {},
): Promise<void> {
  if (clients.length === 0) return;
  const nowMs = now.getTime();
  const zones = [...new Set(clients.map((c) => c.timezone))];
  const plans = openMailings.flatMap((m) =>
    planZones(m, zones, nowMs).map((z) => ({
      mailing_id: m.id,
      zone: z.zone,
      due_at: iso(z.dueAt),
      expires_at: iso(z.expiresAt),
    })),
  );
  // One int[] parameter, matched with `= any(…)`: a set the planner cannot misjudge. With
  // `in (select jsonb_array_elements_text(…))` it estimated 100 ids and a few clients (a batch just
  // imported has no statistics yet) and chose a nested loop that re-read the whole list for every
  // client: 6.8 s for a batch of 5,000 on PostgreSQL (EXPLAIN ANALYZE: 12.5 M comparisons).
  const ids = intArray(clients.map((c) => c.id));
  const nowIso = now.toISOString();
  if (plans.length > 0) {
    // Only where the window is still open for the client: a client added after a mailing has
    // ended for its zone is not recorded as missed. An existing message is moved or expired.
    await ex.execute(sql`
      with p as (
        select * from jsonb_to_recordset(${JSON.stringify(plans)}::text::jsonb)
          as p(mailing_id int, zone text, due_at timestamptz, expires_at timestamptz)
      )
      insert into messages (mailing_id, client_id, phone_number, status, last_error, due_at, expires_at, next_attempt_at, created_at, updated_at)
      select p.mailing_id, c.id, c.phone_number,
        case when ${optedOut} then 'cancelled'
             when p.due_at >= p.expires_at or p.expires_at <= ${nowIso}::timestamptz then 'expired' else 'scheduled' end,
        case when ${optedOut} then ${optedOutReason} end,
        p.due_at, p.expires_at,
        case when m.paused then 'infinity'::timestamptz else p.due_at end,
        ${nowIso}::timestamptz, ${nowIso}::timestamptz
      from clients c
        join p on p.zone = c.timezone
        join mailings m on m.id = p.mailing_id and m.cancelled_at is null
      where c.id = any(${ids}::int[])
        and ${clientMatches(mailingColumns)}
        and (p.expires_at > ${nowIso}::timestamptz and p.due_at < p.expires_at
             ${options.fresh ? sql`` : sql`or exists (select 1 from messages x where x.mailing_id = p.mailing_id and x.client_id = c.id)`})
      ${onConflict}`);
  }
  if (options.fresh) return;
  await ex.execute(sql`
    update messages x set status = 'cancelled', updated_at = ${nowIso}::timestamptz
    from mailings m, clients c
    where x.client_id = any(${ids}::int[])
      and c.id = x.client_id and m.id = x.mailing_id
      and m.cancelled_at is null
      and x.status in ('scheduled', 'retrying', 'expired')
      and not ${clientMatches(mailingColumns)}`);
  // Keep the phone snapshot of unsent messages in step with the client.
  await ex.execute(sql`
    update messages x set phone_number = c.phone_number
    from clients c
    where x.client_id = any(${ids}::int[])
      and c.id = x.client_id
      and x.status in ('scheduled', 'retrying', 'expired', 'cancelled')
      and x.phone_number <> c.phone_number`);
}

/**
 * Cancels every waiting message of a client that is being deleted (SPEC §3). A claimed one is
 * cancelled by the dispatcher, which finds the client gone just before the send.
 */
export async function cancelClientMessages(ex: Executor, clientId: number, now: Date): Promise<void> {
  await ex.execute(sql`
    update messages set status = 'cancelled', updated_at = ${now.toISOString()}::timestamptz
    where client_id = ${clientId} and status in ('scheduled', 'retrying')`);
}

/**
 * Cancelling or deleting a mailing waits for client writes in flight, like planning (planMailing):
 * a client written meanwhile may have planned itself into the mailing before it saw it cancelled,
 * and this statement could not see that uncommitted message (it would stay `scheduled` for a
 * cancelled mailing, or outlive a deleted one). Take it after the mailing's row, as planning does,
 * and before touching any message or counter row of the mailing: a client write being waited for
 * may still write those. Pausing needs none: a message planned past a pause is held by the
 * dispatcher's check before sending.
 */
async function holdClientWrites(ex: Executor): Promise<void> {
  await ex.execute(sql`lock table clients in share mode`);
}

/**
 * No JIT compilation for the rest of this transaction (the planning's). The planning statement of
 * a large mailing is estimated above PostgreSQL's jit_above_cost, and compiling it (42 functions,
 * inlined and optimised) took longer than it saved: 444 of 1,030 ms of PostgreSQL time for a
 * 50,000-message mailing; planning 50,000 clients 860 → 443–514 ms, a million 8.2–9.2 → 6.1–8.1 s
 * (bench/NOTES.md, "JIT in the planning"). PGlite has no JIT; the setting exists there and does
 * nothing.
 */
async function withoutJit(ex: Executor): Promise<void> {
  await ex.execute(sql`set local jit = off`);
}

/**
 * Cancels every waiting message of a mailing (SPEC §4 cancel). A claimed one is cancelled by the
 * dispatcher, which finds the mailing cancelled just before the send, or records the true outcome
 * of a send already handed to the gateway.
 */
export async function cancelMailingMessages(ex: Executor, mailingId: number, now: Date): Promise<void> {
  await holdClientWrites(ex);
  await ex.execute(sql`
    update messages set status = 'cancelled', updated_at = ${now.toISOString()}::timestamptz
    where mailing_id = ${mailingId} and status in ('scheduled', 'retrying')`);
}

/** Deleting a mailing deletes its messages (no foreign key: see schema.ts). */
export async function deleteMailingMessages(ex: Executor, mailingId: number): Promise<void> {
  await holdClientWrites(ex);
  await ex.execute(sql`delete from messages where mailing_id = ${mailingId}`);
}

/** Pausing holds every waiting message back until resume re-plans it (SPEC §4 pause). */
export async function holdMailingMessages(ex: Executor, mailingId: number, now: Date): Promise<void> {
  await ex.execute(sql`
    update messages set next_attempt_at = 'infinity', updated_at = ${now.toISOString()}::timestamptz
    where mailing_id = ${mailingId} and status in ('scheduled', 'retrying')`);
}
