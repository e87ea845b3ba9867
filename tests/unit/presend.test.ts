/** The dispatcher's decisions before a send and after a retryable failure (dispatch/presend.ts), without a database. */
import { describe, expect, test } from "bun:test";
import type { ClaimCheck } from "../../src/dispatch/claim";
import { decideBeforeSend, decideRetry, type PreSendFacts, type WindowClock } from "../../src/dispatch/presend";
import { WindowCache } from "../../src/time/send-window";

const at = (iso: string) => Date.parse(iso);
const now = at("2026-12-01T10:00:00Z");
const matching: ClaimCheck = { clientMatches: true, timezone: "UTC", paused: false, cancelled: false, dueAt: at("2026-12-01T09:00:00Z"), expiresAt: at("2026-12-01T21:00:00Z") };
const windows: WindowClock = new WindowCache();

function facts(overrides: Partial<PreSendFacts> & { check?: ClaimCheck | null } = {}): PreSendFacts {
  return {
    nowMs: now,
    message: { leaseUntil: now + 60_000 },
    leaseNeededMs: 7_000,
    check: matching,
    window: null,
    ...overrides,
  };
}

describe("decideBeforeSend (SPEC §3, §4, §6)", () => {
  test("a held message of a live mailing, client matching, inside its window and lease: send", () => {
    expect(decideBeforeSend(facts(), windows)).toEqual({ action: "send" });
  });

  test("a row no longer held by this claim (mailing deleted, or taken over): drop, write nothing", () => {
    expect(decideBeforeSend(facts({ check: null }), windows)).toEqual({ action: "drop" });
  });

  test("client deleted or no longer matching: cancel, whatever else holds", () => {
    const gone = { ...matching, clientMatches: false, timezone: "" };
    expect(decideBeforeSend(facts({ check: gone }), windows)).toEqual({ action: "cancel" });
    expect(decideBeforeSend(facts({ check: { ...gone, paused: true }, nowMs: at("2026-12-02T00:00:00Z") }), windows)).toEqual({ action: "cancel" });
  });

  test("mailing cancelled: cancel", () => {
    expect(decideBeforeSend(facts({ check: { ...matching, cancelled: true } }), windows)).toEqual({ action: "cancel" });
  });

  test("too little lease left for a send and its write: hand back, due at once", () => {
    const lapsed = facts({ message: { leaseUntil: now + 7_000 } });
    expect(decideBeforeSend(lapsed, windows)).toEqual({ action: "hand-back", at: now, reason: "lease" });
    const enough = facts({ message: { leaseUntil: now + 7_001 } });
    expect(decideBeforeSend(enough, windows)).toEqual({ action: "send" });
  });

  test("mailing paused: hand back until it is resumed", () => {
    expect(decideBeforeSend(facts({ check: { ...matching, paused: true } }), windows)).toEqual({ action: "hand-back", at: null, reason: "paused" });
  });

  test("client-local end reached: expire", () => {
    expect(decideBeforeSend(facts({ nowMs: at("2026-12-01T21:00:00Z"), message: { leaseUntil: at("2026-12-01T21:01:00Z") } }), windows)).toEqual({ action: "expire" });
  });

  test("due and expiry come from the row as re-read, not as claimed (a re-plan may have moved them)", () => {
    const later = { ...matching, dueAt: at("2026-12-01T15:00:00Z") };
    expect(decideBeforeSend(facts({ check: later }), windows)).toEqual({ action: "hand-back", at: at("2026-12-01T15:00:00Z"), reason: "not-due" });
    expect(decideBeforeSend(facts({ check: { ...matching, expiresAt: now } }), windows)).toEqual({ action: "expire" });
  });

  test("outside the send window in the client's zone: hand back at the next opening", () => {
    // 10:00 UTC is 13:00 in Moscow; the window opens at 15:00 Moscow = 12:00 UTC.
    const decision = decideBeforeSend(facts({ check: { ...matching, timezone: "Europe/Moscow" }, window: { from: "15:00", to: "18:00" } }), windows);
    expect(decision).toEqual({ action: "hand-back", at: at("2026-12-01T12:00:00Z"), reason: "window" });
  });

  test("outside the window and it will not open before the end: expire", () => {
    const decision = decideBeforeSend(
      facts({ window: { from: "15:00", to: "18:00" }, check: { ...matching, expiresAt: at("2026-12-01T14:00:00Z") } }),
      windows,
    );
    expect(decision).toEqual({ action: "expire" });
  });

  test("inside the window: send", () => {
    expect(decideBeforeSend(facts({ window: { from: "09:00", to: "18:00" } }), windows)).toEqual({ action: "send" });
  });
});

describe("decideRetry (SPEC §6)", () => {
  const message = { expiresAt: at("2026-12-01T21:00:00Z") };

  test("retry after the delay", () => {
    expect(decideRetry(now, 300_000, message, null, null, windows)).toEqual({ status: "retrying", at: now + 300_000 });
  });

  test("a retry that would land at or after the end expires instead", () => {
    expect(decideRetry(at("2026-12-01T20:55:00Z"), 300_000, message, null, null, windows)).toEqual({ status: "expired" });
  });

  test("a retry outside the window moves to its next opening, or expires if that is after the end", () => {
    const window = { from: "09:00", to: "10:03" };
    expect(decideRetry(now, 300_000, { expiresAt: at("2026-12-03T00:00:00Z") }, window, "UTC", windows)).toEqual({ status: "retrying", at: at("2026-12-02T09:00:00Z") });
    expect(decideRetry(now, 300_000, { expiresAt: at("2026-12-01T23:00:00Z") }, window, "UTC", windows)).toEqual({ status: "expired" });
  });
});
