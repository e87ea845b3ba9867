/**
 * The dispatcher's decisions about one claimed message, as pure functions of what it knows (no
 * database, no clock, no I/O): whether to send it now, and where a retryable failure leads.
 * Unit-tested in tests/unit/presend.test.ts.
 */
import type { SendWindow } from "../time/send-window";
import type { ClaimCheck } from "./claim";

/** The send-window arithmetic the decisions need (time/send-window.ts `WindowCache` in production). */
export interface WindowClock {
  isOpen(atMs: number, zone: string, window: SendWindow): boolean;
  nextOpening(atMs: number, zone: string, window: SendWindow): number;
}

export type SendDecision =
  /** hand it to the gateway */
  | { action: "send" }
  /** the row is no longer held by this claim (mailing deleted, or taken over): write nothing */
  | { action: "drop" }
  /** never handed to the gateway, and never will be: client gone or no longer matching, mailing cancelled */
  | { action: "cancel" }
  /** its client-local end has passed, or the send window will not open again before it */
  | { action: "expire" }
  /** give it back unsent, due again at `at` (epoch ms; null = held until the mailing is resumed) */
  | { action: "hand-back"; at: number | null; reason: "lease" | "paused" | "not-due" | "window" };

export type PreSendFacts = {
  nowMs: number;
  message: { leaseUntil: number };
  /** how much lease a send needs left: its timeout plus time to write the result */
  leaseNeededMs: number;
  /** the claimed row as re-read just now; null when this claim no longer holds it */
  check: ClaimCheck | null;
  /** the mailing's send window, if it has one */
  window: SendWindow | null;
};

/** What to do with a claimed message that holds a gateway request, right before sending it. */
export function decideBeforeSend(facts: PreSendFacts, windows: WindowClock): SendDecision {
  const { nowMs, message, check, window } = facts;
  if (!check) return { action: "drop" };
  // SPEC §3/§4: a deleted, no longer matching client or a cancelled mailing is never sent to.
  if (check.cancelled || !check.clientMatches) return { action: "cancel" };
  if (message.leaseUntil - nowMs <= facts.leaseNeededMs) {
    // It waited here (for a slot or a gateway request) until too little of its lease is left: a
    // send that outlived the lease could be claimed and sent by another worker too.
    return { action: "hand-back", at: nowMs, reason: "lease" };
  }
  if (check.paused) return { action: "hand-back", at: null, reason: "paused" };
  // The row's instants as read now, not as claimed: a re-plan (the mailing's start or end moved,
  // the client's zone changed) may have moved them while the message was held.
  const expiresAt = check.expiresAt;
  if (nowMs >= expiresAt) return { action: "expire" };
  if (nowMs < check.dueAt) return { action: "hand-back", at: check.dueAt, reason: "not-due" };
  if (window && !windows.isOpen(nowMs, check.timezone, window)) {
    const opening = windows.nextOpening(nowMs, check.timezone, window);
    if (opening >= expiresAt) return { action: "expire" };
    return { action: "hand-back", at: opening, reason: "window" };
  }
  return { action: "send" };
}

export type RetryDecision = { status: "retrying"; at: number } | { status: "expired" };

/**
 * After a retryable failure at `nowMs`: the next try `retryDelayMs` later, moved to the next opening
 * of the send window; `expired` if that is not before the client-local end.
 */
export function decideRetry(
  nowMs: number,
  retryDelayMs: number,
  message: { expiresAt: number },
  window: SendWindow | null,
  timezone: string | null,
  windows: WindowClock,
): RetryDecision {
  let at = nowMs + retryDelayMs;
  if (window && timezone) at = windows.nextOpening(at, timezone, window);
  return at >= message.expiresAt ? { status: "expired" } : { status: "retrying", at };
}
