/**
 * The message lifecycle: one closed set of states (SPEC §5). A CHECK constraint in the schema holds
 * the database to it, and only `dispatch/` (planning, claiming, completing) moves a message.
 *
 *   scheduled  planned, waiting for next_attempt_at. In: planning. Out: claim → sending;
 *              sweep → expired; re-plan → cancelled.
 *   sending    claimed by a worker; next_attempt_at holds the lease's end. Out: complete → sent,
 *              retrying, failed, expired; handed back unsent → scheduled/retrying; client gone or
 *              no longer matching, or mailing cancelled, before it reached the gateway → cancelled
 *              (decided by the dispatcher just before the send: re-planning moves only a claimed
 *              row's due and expiry instants); lease expiry → claimed again by anyone.
 *   retrying   a send failed for a reason worth retrying; next_attempt_at is the next try.
 *              Out: claim → sending; sweep → expired; re-plan → cancelled.
 *   sent       the gateway accepted it. Final.
 *   failed     the gateway refused it for good (a 4xx other than 408/429). Final.
 *   expired    the mailing's end passed in the client's zone before it could be sent. Final unless
 *              a mailing PATCH re-opens the window (re-plan).
 *   cancelled  client or mailing deleted/cancelled, or no longer matching, before the message was
 *              handed to the gateway (a send handed over records its true outcome). Not counted in
 *              statistics. Revived by a re-plan when the client matches again.
 */
export const messageStates = [
  "scheduled",
  "sending",
  "retrying",
  "sent",
  "failed",
  "expired",
  "cancelled",
] as const;

export type MessageState = (typeof messageStates)[number];

/** States counted in statistics: everything but cancelled (SPEC §5). */
export const countedStates = ["scheduled", "sending", "sent", "retrying", "failed", "expired"] as const;
export type CountedState = (typeof countedStates)[number];

/** States the claim picks up: waiting ones, and `sending` rows whose lease ran out (messages_due_idx). */
export const claimableStates = ["scheduled", "retrying", "sending"] as const satisfies readonly MessageState[];

/** States the expiry sweep moves to `expired` (messages_expiry_idx). */
export const waitingStates = ["scheduled", "retrying"] as const satisfies readonly MessageState[];

/** A state-count record with every counted key present, zeros included. */
export function emptyCounts(): Record<CountedState, number> {
  return { scheduled: 0, sending: 0, sent: 0, retrying: 0, failed: 0, expired: 0 };
}
