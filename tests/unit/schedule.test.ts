/** SPEC §4: wall-clock times, time zones, DST and send windows, all through Temporal. */
import { describe, expect, test } from "bun:test";
import { inWindow, isClockTime, nextOpening } from "../../src/time/send-window";
import { canonicalTimeZone, formatWallTime, isSupportedWallTime, parseWallTime, wallToEpoch } from "../../src/time/wall-time";
import { planZones } from "../../src/time/zone-plan";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

const wall = (text: string) => {
  const value = parseWallTime(text);
  if (!value) throw new Error(`not a wall time: ${text}`);
  return value;
};
const utc = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe("§4 parseWallTime", () => {
  test("a plain local date-time is kept as it is", () => {
    expect(formatWallTime(wall("2026-12-01T09:00:00"))).toBe("2026-12-01T09:00:00");
    expect(formatWallTime(wall("2026-12-01T09:00"))).toBe("2026-12-01T09:00:00");
    expect(formatWallTime(wall("2026-12-01 09:00:00"))).toBe("2026-12-01T09:00:00");
  });

  test("a trailing Z is ignored: the wall-clock fields are used, not shifted", () => {
    expect(formatWallTime(wall("2026-12-01T09:00:00Z"))).toBe("2026-12-01T09:00:00");
  });

  test("an offset is ignored in every spelling", () => {
    for (const text of [
      "2026-12-01T09:00:00+05:00",
      "2026-12-01T09:00:00-03:30",
      "2026-12-01T09:00:00+0500",
      "2026-12-01T09:00:00+05",
      "2026-12-01T09:00:00+14:00[Pacific/Kiritimati]",
    ]) {
      expect(formatWallTime(wall(text))).toBe("2026-12-01T09:00:00");
    }
  });

  test("fractions of a second are truncated", () => {
    expect(formatWallTime(wall("2026-12-01T09:00:00.999Z"))).toBe("2026-12-01T09:00:00");
  });

  test("malformed and impossible date-times are refused", () => {
    for (const text of [
      "2026-09-32T09:00:00",
      "2026-09-32",
      "2026-02-30T10:00",
      "2026-13-01T09:00",
      "2026-12-01T24:00:00",
      "2026-12-01T09:60",
      "2026-12-01T23:59:60",
      "2026-12-01",
      "2026-12-01T9:00",
      "01.12.2026 09:00",
      "+002026-12-01T09:00:00",
      "2026-12-01T09:00:00.1234567891",
      "2026-12-01T09:00:00 junk",
      "tomorrow",
      "",
    ]) {
      expect(parseWallTime(text)).toBeNull();
    }
  });

  test("only years that both JavaScript and PostgreSQL read back alike are supported", () => {
    expect(isSupportedWallTime(wall("2026-12-01T09:00:00"))).toBe(true);
    expect(isSupportedWallTime(wall("1970-01-01T00:00:00"))).toBe(true);
    expect(isSupportedWallTime(wall("0001-01-01T09:00:00"))).toBe(false);
    expect(isSupportedWallTime(wall("9999-12-31T12:00:00"))).toBe(false);
  });
});

describe("§3 canonicalTimeZone", () => {
  test("IANA names are accepted and returned in their canonical spelling", () => {
    expect(canonicalTimeZone("Europe/Moscow")).toBe("Europe/Moscow");
    expect(canonicalTimeZone("europe/moscow")).toBe("Europe/Moscow");
    expect(canonicalTimeZone("UTC")).toBe("UTC");
    expect(canonicalTimeZone("America/Argentina/Buenos_Aires")).toBe("America/Argentina/Buenos_Aires");
    expect(canonicalTimeZone("Asia/Vladivostok")).toBe("Asia/Vladivostok");
  });

  test("unknown zones, offsets and junk are refused", () => {
    for (const name of ["Asia/Unknown", "Mars/Olympus_Mons", "+05:00", "Z", "", "../etc/passwd", "Europe/Moscow "]) {
      expect(canonicalTimeZone(name)).toBeNull();
    }
  });
});

describe("§4 wall time → instant per zone", () => {
  test("09:00 is reached at 09:00 local time in Vladivostok and in Moscow", () => {
    const start = wall("2026-12-01T09:00:00Z");
    expect(iso(wallToEpoch(start, "Asia/Vladivostok"))).toBe("2026-11-30T23:00:00.000Z");
    expect(iso(wallToEpoch(start, "Europe/Moscow"))).toBe("2026-12-01T06:00:00.000Z");
    expect(iso(wallToEpoch(start, "UTC"))).toBe("2026-12-01T09:00:00.000Z");
  });

  test("a time in the DST gap moves forward (America/New_York 2027-03-14T02:30 → 03:30 EDT)", () => {
    expect(iso(wallToEpoch(wall("2027-03-14T02:30:00"), "America/New_York"))).toBe("2027-03-14T07:30:00.000Z");
  });

  test("a time in the DST overlap takes the earlier instant (Europe/Berlin 2027-10-31T02:30 → CEST)", () => {
    expect(iso(wallToEpoch(wall("2027-10-31T02:30:00"), "Europe/Berlin"))).toBe("2027-10-31T00:30:00.000Z");
  });

  test("planZones computes one plan per distinct zone, due at the local start and expiring at the local end", () => {
    const plans = planZones(
      { start: wall("2026-12-01T09:00:00"), end: wall("2026-12-01T21:00:00"), window: null },
      ["Asia/Vladivostok", "Europe/Moscow"],
      utc("2026-11-01T00:00:00Z"),
    );
    expect(plans.map((p) => ({ zone: p.zone, due: iso(p.dueAt), expires: iso(p.expiresAt) }))).toEqual([
      { zone: "Asia/Vladivostok", due: "2026-11-30T23:00:00.000Z", expires: "2026-12-01T11:00:00.000Z" },
      { zone: "Europe/Moscow", due: "2026-12-01T06:00:00.000Z", expires: "2026-12-01T18:00:00.000Z" },
    ]);
  });
});

describe("§4 send windows", () => {
  const night = { from: "22:00", to: "06:00" }; // wraps midnight
  const day = { from: "09:00", to: "21:00" };
  const zone = "Asia/Vladivostok"; // UTC+10, no DST

  test("HH:MM is validated", () => {
    for (const ok of ["00:00", "09:00", "23:59"]) expect(isClockTime(ok)).toBe(true);
    for (const bad of ["9:00", "24:00", "12:60", "12:00:00", "noon", "", " 09:00"]) expect(isClockTime(bad)).toBe(false);
  });

  test("a window that wraps midnight contains late evening and early morning, not the day", () => {
    expect(inWindow(utc("2026-12-01T13:30:00Z"), zone, night)).toBe(true); // 23:30 local
    expect(inWindow(utc("2026-12-01T17:00:00Z"), zone, night)).toBe(true); // 03:00 local
    expect(inWindow(utc("2026-12-01T02:00:00Z"), zone, night)).toBe(false); // 12:00 local
    expect(inWindow(utc("2026-11-30T20:00:00Z"), zone, night)).toBe(false); // 06:00 local: the end is excluded
  });

  test("nextOpening inside a wrapping window is the instant itself", () => {
    expect(iso(nextOpening(utc("2026-12-01T13:30:00Z"), zone, night))).toBe("2026-12-01T13:30:00.000Z");
    expect(iso(nextOpening(utc("2026-12-01T17:00:00Z"), zone, night))).toBe("2026-12-01T17:00:00.000Z");
  });

  test("nextOpening outside a wrapping window is 22:00 local the same day", () => {
    // 12:00 local on 1 December → 22:00 local on 1 December (12:00Z)
    expect(iso(nextOpening(utc("2026-12-01T02:00:00Z"), zone, night))).toBe("2026-12-01T12:00:00.000Z");
    // 06:00 local, the moment the window closes → 22:00 local that evening
    expect(iso(nextOpening(utc("2026-11-30T20:00:00Z"), zone, night))).toBe("2026-12-01T12:00:00.000Z");
  });

  test("nextOpening after a daytime window has closed is tomorrow's opening", () => {
    // 22:00 local on 1 December → 09:00 local on 2 December (23:00Z on 1 December)
    expect(iso(nextOpening(utc("2026-12-01T12:00:00Z"), zone, day))).toBe("2026-12-01T23:00:00.000Z");
    // 07:00 local → 09:00 local the same day
    expect(iso(nextOpening(utc("2026-11-30T21:00:00Z"), zone, day))).toBe("2026-11-30T23:00:00.000Z");
  });

  test("an opening that falls in a DST gap resolves as compatible", () => {
    // New York, 2027-03-14 01:00 EST; a window opening at 02:30 opens at 03:30 EDT.
    const at = nextOpening(utc("2027-03-14T06:00:00Z"), "America/New_York", { from: "02:30", to: "05:00" });
    expect(iso(at)).toBe("2027-03-14T07:30:00.000Z");
  });

  test("without a window, nextOpening is the instant itself", () => {
    expect(nextOpening(utc("2026-12-01T02:00:00Z"), zone, null)).toBe(utc("2026-12-01T02:00:00Z"));
  });

  test("planZones moves the due time into the window and never before now", () => {
    const [plan] = planZones(
      { start: wall("2026-12-01T09:00:00"), end: wall("2026-12-03T09:00:00"), window: night },
      [zone],
      utc("2026-12-01T05:00:00Z"), // 15:00 local, after the start
    );
    expect(iso(plan!.dueAt)).toBe("2026-12-01T12:00:00.000Z"); // 22:00 local
    expect(iso(plan!.expiresAt)).toBe("2026-12-02T23:00:00.000Z");
  });
});
