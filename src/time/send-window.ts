/**
 * Daily send windows in a client's local time (SPEC §4 `send_window`), through Temporal.
 */
import { Temporal } from "@js-temporal/polyfill";

/** A daily sending window in the client's local time; may wrap midnight (`22:00`–`06:00`). */
export type SendWindow = { from: string; to: string };

const hhmm = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Validates `HH:MM`. */
export function isClockTime(value: string): boolean {
  return hhmm.test(value);
}

function minutesOf(value: string): number {
  const [h, m] = value.split(":").map(Number);
  return h! * 60 + m!;
}

/** True when the local time of `epochMs` in `zone` is inside the window. */
export function inWindow(epochMs: number, zone: string, window: SendWindow): boolean {
  const local = Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone);
  const minute = local.hour * 60 + local.minute;
  const from = minutesOf(window.from);
  const to = minutesOf(window.to);
  return from < to ? minute >= from && minute < to : minute >= from || minute < to;
}

/**
 * The first instant at or after `epochMs` that lies inside the window, in the zone's local time.
 * Without a window, `epochMs` itself.
 */
export function nextOpening(epochMs: number, zone: string, window: SendWindow | null): number {
  if (!window || inWindow(epochMs, zone, window)) return epochMs;
  const local = Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone);
  const [h, m] = window.from.split(":").map(Number);
  const open = (date: Temporal.PlainDate) =>
    date
      .toPlainDateTime({ hour: h!, minute: m! })
      .toZonedDateTime(zone, { disambiguation: "compatible" }).epochMilliseconds;
  const today = open(local.toPlainDate());
  return today > epochMs ? today : open(local.toPlainDate().add({ days: 1 }));
}

/**
 * Window checks for the dispatcher's hot path. A Temporal conversion costs ~37 µs here, too much
 * per message at thousands of sends a second, so answers are memoised per (zone, window, minute):
 * the local time of a zone only changes window-membership on a minute boundary.
 */
export class WindowCache {
  private minute = -1;
  private memo = new Map<string, boolean>();

  isOpen(nowMs: number, zone: string, window: SendWindow): boolean {
    const minute = Math.floor(nowMs / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.memo.clear();
    }
    const key = `${zone}|${window.from}|${window.to}`;
    let open = this.memo.get(key);
    if (open === undefined) {
      open = inWindow(nowMs, zone, window);
      this.memo.set(key, open);
    }
    return open;
  }

  /** The next opening at or after `atMs` (not memoised: only for the few messages that wait). */
  nextOpening(atMs: number, zone: string, window: SendWindow | null): number {
    return nextOpening(atMs, zone, window);
  }
}
