/** SPEC §3: every accepted phone form normalises to 7XXXXXXXXXX; anything else is refused. */
import { describe, expect, test } from "bun:test";
import { normalizePhone } from "../../src/clients/phone";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

describe("§3 phone normalisation", () => {
  const accepted: [unknown, string][] = [
    [79101459028, "the JSON number 79101459028"],
    ["79101459028", "the string 79101459028"],
    ["+7 (910) 145-90-28", "the formatted +7 (910) 145-90-28"],
    ["+79101459028", "+7 without spaces"],
    ["89101459028", "the trunk prefix 8"],
    [89101459028, "the trunk prefix 8 as a number"],
    ["8 (910) 145-90-28", "the trunk prefix 8, formatted"],
    [9101459028, "the 10-digit number"],
    ["9101459028", "the 10-digit string"],
    ["  910 145 90 28 ", "10 digits with spaces around"],
  ];
  for (const [input, label] of accepted) {
    test(`${label} → 79101459028, operator code 910`, () => {
      expect(normalizePhone(input)).toEqual({ ok: true, phone: "79101459028", operatorCode: "910" });
    });
  }

  test("the operator code is digits 2–4 of the normalised phone", () => {
    expect(normalizePhone("+7 999 000-11-22")).toEqual({ ok: true, phone: "79990001122", operatorCode: "999" });
  });

  const rejected: [unknown, string][] = [
    ["", "an empty string"],
    ["   ", "blanks"],
    ["abc", "letters"],
    ["7910145902a", "a letter among digits"],
    ["+7 910 145 90 28 ext 1", "an extension"],
    ["12345", "too few digits"],
    ["791014590281", "12 digits"],
    ["69101459028", "11 digits not starting with 7 or 8"],
    ["+89101459028", "+8 (the trunk prefix is not international)"],
    ["+9101459028", "+ with 10 digits"],
    ["+1 202 555 0100", "a non-Russian international number"],
    ["7-910-145-90-28#", "a stray symbol"],
    [7.9101459028e10 + 0.5, "a fraction"],
    [-79101459028, "a negative number"],
    [1e300, "a huge number"],
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "Infinity"],
    [null, "null"],
    [true, "a boolean"],
    [[79101459028], "an array"],
    [{ phone: 79101459028 }, "an object"],
    [undefined, "undefined"],
  ];
  for (const [input, label] of rejected) {
    test(`refuses ${label}`, () => {
      const result = normalizePhone(input);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
    });
  }
});
