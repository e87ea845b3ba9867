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
 *   sent       the gateway accepted it. Final, unless the provider reports delivery: a receipt
 *              (webhooks/, or the receipt sweep at every tick) → delivered or undelivered.
 *   delivered  the provider reports it reached the phone. Final.
 *   undelivered the provider reports it did not (last_error holds its reason). Final.
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
  "delivered",
  "undelivered",
  "failed",
  "expired",
  "cancelled",
] as const;

export type MessageState = (typeof messageStates)[number];

/**
 * Keys of the statistics (SPEC §5): every state but cancelled. `sent` counts every message the
 * gateway accepted — `delivered` and `undelivered` included, which are the receipts heard so far
 * for those (see `statsCounts`).
 */
export const countedStates = ["scheduled", "sending", "sent", "retrying", "failed", "expired", "delivered", "undelivered"] as const;
export type CountedState = (typeof countedStates)[number];

/** States the claim picks up: waiting ones, and `sending` rows whose lease ran out (messages_due_idx). */
export const claimableStates = ["scheduled", "retrying", "sending"] as const satisfies readonly MessageState[];

/** States the expiry sweep moves to `expired` (messages_expiry_idx). */
export const waitingStates = ["scheduled", "retrying"] as const satisfies readonly MessageState[];

/** States a receipt moves a `sent` message to. */
export const receiptStates = ["delivered", "undelivered"] as const satisfies readonly MessageState[];
export type ReceiptState = (typeof receiptStates)[number];

/** A state-count record with every counted key present, zeros included. */
export function emptyCounts(): Record<CountedState, number> {
  return { scheduled: 0, sending: 0, sent: 0, retrying: 0, failed: 0, expired: 0, delivered: 0, undelivered: 0 };
}

/**
 * Statistics from counts per state: `sent` grows by the delivered and undelivered ones (they were
 * accepted by the gateway too), and the total counts each message once.
 */
export function statsCounts(byState: Record<CountedState, number>): { counts: Record<CountedState, number>; total: number } {
  const total = countedStates.reduce((sum, s) => sum + byState[s], 0);
  return { counts: { ...byState, sent: byState.sent + byState.delivered + byState.undelivered }, total };
}
