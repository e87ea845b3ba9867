/**
 * Property-based tests (issue 14 item 5) with fast-check: phone normalisation, the time-zone
 * planner across every IANA zone and each DST transition of 2026–2030, and the send window.
 * `bun run chaos` (CHAOS=1) runs each property ten times as often.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { Temporal } from "@js-temporal/polyfill";
import fc from "fast-check";
import { normalizePhone } from "../../src/clients/phone";
import { inWindow, nextOpening } from "../../src/time/send-window";
import { planZones } from "../../src/time/zone-plan";

setDefaultTimeout(120_000);

const runs = (n: number) => (process.env.CHAOS === "1" ? n * 10 : n);
const zones = Intl.supportedValuesOf("timeZone");

describe("phone normalisation (properties)", () => {
  const tenDigits = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 10, maxLength: 10 });

  test("every accepted spelling of a number becomes 7 + its ten digits, operator code = digits 1–3", () => {
    fc.assert(
      fc.property(tenDigits, fc.constantFrom("7", "+7", "8", ""), fc.boolean(), (d, prefix, pretty) => {
        const body = pretty ? ` (${d.slice(0, 3)}) ${d.slice(3, 6)}-${d.slice(6, 8)}-${d.slice(8)}` : d;
        const result = normalizePhone(prefix + body);
        expect(result).toEqual({ ok: true, phone: `7${d}`, operatorCode: d.slice(0, 3) });
      }),
      { numRuns: runs(2000) },
    );
  });

  test("any input: never throws; an accepted one is 7XXXXXXXXXX and normalises to itself", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.integer(), fc.double(), fc.anything()), (input) => {
        const result = normalizePhone(input);
        if (result.ok) {
          expect(result.phone).toMatch(/^7\d{10}$/);
          expect(result.operatorCode).toBe(result.phone.slice(1, 4));
          expect(normalizePhone(result.phone)).toEqual(result);
        } else {
          expect(result.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: runs(5000) },
    );
  });
});

/** True when the wall time does not exist in the zone (it fell into a DST gap). */
function inGap(wall: Temporal.PlainDateTime, zone: string): boolean {
  // ("reject" throws for a fold as well: there the wall time exists twice.)
  return !wall.toZonedDateTime(zone, { disambiguation: "earlier" }).toPlainDateTime().equals(wall);
}

/**
 * The planner's promise (SPEC §4): the instant planned for a zone, shown in that zone, is the
 * mailing's wall time; a wall time in a DST gap is moved forward by the gap (never earlier, never
 * more than the gap: at most 3 h anywhere).
 */
function checkPlanned(wall: Temporal.PlainDateTime, zone: string) {
  const end = wall.add({ days: 1 });
  const [plan] = planZones({ start: wall, end, window: null }, [zone], 0);
  const shown = Temporal.Instant.fromEpochMilliseconds(plan!.dueAt).toZonedDateTimeISO(zone).toPlainDateTime();
  if (!inGap(wall, zone)) {
    expect({ zone, shown: shown.toString() }).toEqual({ zone, shown: wall.toString() });
  } else {
    const moved = wall.until(shown, { largestUnit: "minutes" }).total("minutes");
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual(180);
  }
  expect(plan!.expiresAt).toBeGreaterThan(plan!.dueAt);
}

describe("time-zone planner (properties)", () => {
  test("around every DST transition of 2026–2030 in every IANA zone, the planned instant shows the mailing's wall time (or the gap's end)", () => {
    let transitions = 0;
    let gaps = 0;
    for (const zone of zones) {
      let at = Temporal.ZonedDateTime.from({ timeZone: zone, year: 2026, month: 1, day: 1 });
      for (;;) {
        const next = at.getTimeZoneTransition("next");
        if (!next || next.year > 2030) break;
        transitions++;
        // The wall times just before the change, inside the gap or fold, and after it.
        const local = next.toPlainDateTime();
        for (const minutes of [-61, -1, 0, 1, 29, 59, 61, 119]) {
          const wall = local.add({ minutes });
          if (inGap(wall, zone)) gaps++;
          checkPlanned(wall, zone);
        }
        // The same wall time one hour before the change, as seen before it (catches folds).
        checkPlanned(next.subtract({ minutes: 1 }).toPlainDateTime(), zone);
        at = next;
      }
    }
    expect(transitions).toBeGreaterThan(1000);
    expect(gaps).toBeGreaterThan(0);
  });

  test("random wall times in random zones, 2026–2030", () => {
    const wallTimes = fc
      .record({
        year: fc.integer({ min: 2026, max: 2030 }),
        month: fc.integer({ min: 1, max: 12 }),
        day: fc.integer({ min: 1, max: 28 }),
        hour: fc.integer({ min: 0, max: 23 }),
        minute: fc.integer({ min: 0, max: 59 }),
      })
      .map((f) => Temporal.PlainDateTime.from(f));
    fc.assert(fc.property(fc.constantFrom(...zones), wallTimes, (zone, wall) => checkPlanned(wall, zone)), { numRuns: runs(3000) });
  });
});

describe("send window (properties)", () => {
  const clock = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`);
  const windows = fc.tuple(clock, clock).filter(([from, to]) => from !== to).map(([from, to]) => ({ from, to }));
  const instants = fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2030, 11, 31) });

  test("nextOpening: not before the instant, within two days, inside the window (unless its opening fell into a DST gap), and the instant itself when already inside", () => {
    fc.assert(
      fc.property(fc.constantFrom(...zones), windows, instants, (zone, window, t) => {
        const open = nextOpening(t, zone, window);
        expect(open).toBeGreaterThanOrEqual(t);
        expect(open - t).toBeLessThanOrEqual(2 * 86_400_000);
        if (inWindow(t, zone, window)) expect(open).toBe(t);
        else if (!inWindow(open, zone, window)) {
          // The only excuse: the window's opening wall time does not exist that day.
          const local = Temporal.Instant.fromEpochMilliseconds(open).toZonedDateTimeISO(zone);
          const [h, m] = window.from.split(":").map(Number);
          expect(inGap(local.toPlainDate().toPlainDateTime({ hour: h!, minute: m! }), zone) || inGap(local.toPlainDate().subtract({ days: 1 }).toPlainDateTime({ hour: h!, minute: m! }), zone)).toBe(true);
        }
        expect(nextOpening(t, zone, null)).toBe(t);
      }),
      { numRuns: runs(2000) },
    );
  });

  test("nextOpening is the first opening: no sampled minute between the instant and it is inside the window", () => {
    fc.assert(
      fc.property(fc.constantFrom(...zones), windows, instants, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 5, maxLength: 5 }), (zone, window, t, fractions) => {
        const open = nextOpening(t, zone, window);
        for (const f of fractions) {
          const between = t + Math.floor(((open - t) * f) / 60_000) * 60_000;
          if (between < open - 60_000 && between > t) expect(inWindow(between, zone, window)).toBe(false);
        }
      }),
      { numRuns: runs(1000) },
    );
  });
});
