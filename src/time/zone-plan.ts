/**
 * When a mailing is due and when it ends in each time zone (SPEC §4): Temporal runs once per distinct
 * zone, never per client.
 */
import type { Temporal } from "@js-temporal/polyfill";
import { nextOpening, type SendWindow } from "./send-window";
import { wallToEpoch } from "./wall-time";

/** When one zone's clients are due and when their window ends. */
export type ZonePlan = { zone: string; dueAt: number; expiresAt: number };

/**
 * Plans a mailing for each zone: due at the wall start (moved into the send window, and not before
 * `nowMs` when the window decides), expiring at the wall end. `dueAt >= expiresAt` means the client
 * can no longer get the message: it is planned `expired`.
 */
export function planZones(
  mailing: { start: Temporal.PlainDateTime; end: Temporal.PlainDateTime; window: SendWindow | null },
  zones: Iterable<string>,
  nowMs: number,
): ZonePlan[] {
  const plans: ZonePlan[] = [];
  for (const zone of zones) {
    const start = wallToEpoch(mailing.start, zone);
    const expiresAt = wallToEpoch(mailing.end, zone);
    const dueAt = mailing.window ? nextOpening(Math.max(start, nowMs), zone, mailing.window) : start;
    plans.push({ zone, dueAt, expiresAt });
  }
  return plans;
}
