/**
 * Wall-clock time → instants, per time zone (SPEC §4). A mailing's start and end are wall-clock
 * times: a client in zone Z gets the message once its local time reaches the start, never after it
 * reaches the end. Every conversion goes through Temporal with `compatible` disambiguation (a time
 * in a DST gap moves forward, one in an overlap takes the earlier instant).
 *
 * Callers compute once per distinct zone, never per client: about 37 ms per 1,000
 * `toZonedDateTime` calls on these machines.
 */
import { Temporal } from "@js-temporal/polyfill";

/** The earliest and latest UTC offsets in use anywhere: Pacific/Kiritimati and Baker Island. */
export const earliestZone = "+14:00";
export const latestZone = "-12:00";

const wallPattern =
  /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::[0-5]\d(?:\.\d{1,9})?)?)(?:Z|z|[+-]\d{2}(?::?\d{2})?)?(?:\[[^\]]+\])?$/;

/**
 * Parses a wall-clock date-time. A trailing `Z`, offset or `[zone]` is accepted and ignored on
 * purpose: old clients send `2026-12-01T09:00:00Z` meaning "09:00 wherever the client is".
 * Returns null when the text is not a real date-time (`2026-09-32`, `2026-02-30T10:00`, a leap
 * second `…T23:59:60`, which Temporal would otherwise quietly turn into :59).
 */
export function parseWallTime(input: string): Temporal.PlainDateTime | null {
  const match = wallPattern.exec(input.trim());
  if (!match) return null;
  try {
    return Temporal.PlainDateTime.from(`${match[1]}T${match[2]}`, { overflow: "reject" }).round({
      smallestUnit: "second",
      roundingMode: "trunc",
    });
  } catch {
    return null;
  }
}

/**
 * The wall times a mailing may use. Beyond these, the instants at UTC+14 and UTC−12 leave the years
 * 0001–9999 that JavaScript dates and PostgreSQL timestamps both print and read the same way.
 */
export const earliestWallTime = Temporal.PlainDateTime.from("1970-01-01T00:00:00");
export const latestWallTime = Temporal.PlainDateTime.from("9999-12-30T23:59:59");

export function isSupportedWallTime(value: Temporal.PlainDateTime): boolean {
  return (
    Temporal.PlainDateTime.compare(value, earliestWallTime) >= 0 &&
    Temporal.PlainDateTime.compare(value, latestWallTime) <= 0
  );
}

/** `2026-12-01T09:00:00`: the form start_time and end_time are stored and returned in. */
export function formatWallTime(value: Temporal.PlainDateTime): string {
  return value.toString({ smallestUnit: "second" });
}

/** The canonical IANA name of a zone, or null if it is not one. Offsets are not zones here. */
export function canonicalTimeZone(name: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+\-]*(\/[A-Za-z0-9_+\-]+)*$/.test(name)) return null;
  try {
    return Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(name).timeZoneId;
  } catch {
    return null;
  }
}

/** The instant (epoch ms) at which the wall time is reached in the zone. */
export function wallToEpoch(wall: Temporal.PlainDateTime, zone: string): number {
  return wall.toZonedDateTime(zone, { disambiguation: "compatible" }).epochMilliseconds;
}
