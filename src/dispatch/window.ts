/**
 * Send-window checks on the hot path. A Temporal conversion costs ~37 µs here, too much per message
 * at thousands of sends a second, so answers are memoised per (zone, window, minute): the local
 * time of a zone only changes window-membership on a minute boundary.
 */
import { inWindow, nextOpening, type SendWindow } from "../mailings/schedule";

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
