/** Issue 15 item 3: placeholders, plain substitution, fallbacks, and the SMS length of a text. */
import { describe, expect, test } from "bun:test";
import { placeholdersOf, render, smsLength } from "../../src/mailings/template";

describe("mailing text placeholders", () => {
  test("names and fallbacks are read, spaces allowed", () => {
    expect(placeholdersOf("Hi {{name|customer}}, {{ phone_number }} / {{tag}} {{ city | Moscow }}")).toEqual([
      { name: "name", fallback: "customer" },
      { name: "phone_number", fallback: null },
      { name: "tag", fallback: null },
      { name: "city", fallback: "Moscow" },
    ]);
    expect(placeholdersOf("no placeholders {{ }} {{1x}} {single}")).toEqual([]);
  });

  test("rendering substitutes strings only: values, fallbacks for missing or empty ones, nothing evaluated", () => {
    const text = "Hi {{name|customer}}, code {{code}}, {{tag}}";
    expect(render(text, { name: "Anna", code: "{{name}}", tag: "vip" })).toBe("Hi Anna, code {{name}}, vip");
    expect(render(text, { name: "", tag: "" })).toBe("Hi customer, code , ");
    expect(render("{{constructor}}{{__proto__|x}}", {})).toBe("x");
    expect(render("plain", { name: "x" })).toBe("plain");
  });
});

describe("SMS length", () => {
  test("GSM-7: 160 in one part, 153 per part beyond; extension characters count twice", () => {
    expect(smsLength("a".repeat(160))).toEqual({ encoding: "GSM-7", characters: 160, segments: 1 });
    expect(smsLength("a".repeat(161))).toEqual({ encoding: "GSM-7", characters: 161, segments: 2 });
    expect(smsLength("a".repeat(306))).toEqual({ encoding: "GSM-7", characters: 306, segments: 2 });
    expect(smsLength("€".repeat(80))).toEqual({ encoding: "GSM-7", characters: 160, segments: 1 });
    expect(smsLength("€".repeat(81))).toEqual({ encoding: "GSM-7", characters: 162, segments: 2 });
  });

  test("any Cyrillic (or other non-GSM character) makes it UCS-2: 70 in one part, 67 per part", () => {
    expect(smsLength("Привет".padEnd(70, "!"))).toEqual({ encoding: "UCS-2", characters: 70, segments: 1 });
    expect(smsLength("a".repeat(70) + "ж")).toEqual({ encoding: "UCS-2", characters: 71, segments: 2 });
    expect(smsLength("я".repeat(134))).toEqual({ encoding: "UCS-2", characters: 134, segments: 2 });
    expect(smsLength("я".repeat(135)).segments).toBe(3);
  });
});
