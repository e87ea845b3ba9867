/**
 * Errors that mislead (issue 10, item 8): every 422 reads as a person would write it and says what
 * is accepted; what was quietly accepted is refused; a wrong method is a 405 with `Allow`.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { auth, type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { expectProblem } from "./expect-problem";

setDefaultTimeout(60_000);

const good = { text: "t", start_time: "2026-12-01T09:00:00", end_time: "2026-12-02T09:00:00" };

/** The one message the problem gives for `field`. */
function messageOf(reply: { body: { errors: { field: string; message: string }[] } }, field: string): string {
  const found = reply.body.errors.filter((e) => e.field === field);
  expect(found.length, JSON.stringify(reply.body)).toBe(1);
  return found[0]!.message;
}

/** Validator wording that must never reach a person. */
const raw = /Expected|should be one of|found:|Property '|property|undefined/;

for (const backend of backends()) {
  describe(`[${backend}] §8 error messages a person can act on`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend);
    });
    afterAll(() => t.close());

    test('"codes_filter": 910 asks for a list of 3-digit codes', async () => {
      const r = await t.request("POST", "/api/v1/mailings", { ...good, codes_filter: 910 });
      expectProblem(r, 422, "codes_filter");
      expect(messageOf(r, "codes_filter")).toBe("must be a list of 3-digit operator codes, such as [910, 911]");
    });

    for (const value of ["910", "", "910,911"]) {
      test(`"codes_filter": ${JSON.stringify(value)} is refused as not a list (it was read as its characters, "" as every operator)`, async () => {
        const r = await t.request("POST", "/api/v1/mailings", { ...good, codes_filter: value });
        expectProblem(r, 422, "codes_filter");
        expect(r.body.errors).toEqual([{ field: "codes_filter", message: "must be a list of 3-digit operator codes, such as [910, 911]" }]);
      });
    }

    test("a code of the wrong type in codes_filter names the item and what it may be", async () => {
      const r = await t.request("POST", "/api/v1/mailings", { ...good, codes_filter: [910, true] });
      expectProblem(r, 422, "codes_filter.1");
      expect(messageOf(r, "codes_filter.1")).toBe("must be a 3-digit operator code, such as 910 or \"910\"");
    });

    test("the latest accepted wall time is the one the README states, and the message names it", async () => {
      const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
      expect(readme.includes("1970-01-01T00:00:00 to 9999-12-30T23:59:59"), "README states the bound").toBe(true);
      const r = await t.request("POST", "/api/v1/mailings", { ...good, start_time: "9999-12-31T00:00:00", end_time: "9999-12-31T23:59:59" });
      expectProblem(r, 422, ["start_time", "end_time"]);
      expect(messageOf(r, "end_time")).toBe("must be from 1970-01-01T00:00:00 to 9999-12-30T23:59:59");
      const edge = await t.request("POST", "/api/v1/mailings", { ...good, start_time: "9999-12-30T00:00:00", end_time: "9999-12-30T23:59:59" });
      expect(edge.status).toBe(201);
    });

    test("an offset that no clock has (+25:00) is refused, not ignored", async () => {
      for (const start of ["2026-12-01T09:00:00+25:00", "2026-12-01T09:00:00+03:60", "2026-12-01T09:00:00-99"]) {
        const r = await t.request("POST", "/api/v1/mailings", { ...good, start_time: start });
        expectProblem(r, 422, "start_time");
        expect(messageOf(r, "start_time")).toContain("offset");
      }
      const ok = await t.request("POST", "/api/v1/mailings", { ...good, start_time: "2026-12-01T09:00:00+05:00" });
      expect(ok.status).toBe(201);
    });

    test("a 23-digit phone number is not a Russian number (not 'must be a whole number')", async () => {
      const r = await t.request("POST", "/api/v1/clients", '{"phone_number": 12345678901234567890123}', {
        ...auth,
        "content-type": "application/json",
      });
      expectProblem(r, 422, "phone_number");
      expect(messageOf(r, "phone_number")).toStartWith("must be a Russian number");
    });

    test("a cursor or id beyond the 32-bit range says the range, not 'a positive integer'", async () => {
      const cursor = await t.request("GET", "/api/v1/clients?cursor=99999999999");
      expectProblem(cursor, 422, "cursor");
      expect(messageOf(cursor, "cursor")).toBe("must be the next_cursor of a previous page: a whole number from 1 to 2147483647");
      const id = await t.request("GET", "/api/v1/clients/99999999999");
      expectProblem(id, 422, "id");
      expect(messageOf(id, "id")).toBe("must be a whole number from 1 to 2147483647");
    });

    test("a tag is counted in characters: 64 emoji are accepted, 65 refused, in clients and in tags_filter", async () => {
      const ok = await t.request("POST", "/api/v1/clients", { phone_number: "79300000001", tag: "😀".repeat(64) });
      expect(ok.status).toBe(201);
      expect(ok.body.tag).toBe("😀".repeat(64));
      const long = await t.request("POST", "/api/v1/clients", { phone_number: "79300000002", tag: "😀".repeat(65) });
      expectProblem(long, 422, "tag");
      expect(messageOf(long, "tag")).toBe("must be at most 64 characters");
      const filter = await t.request("POST", "/api/v1/mailings", { ...good, tags_filter: ["😀".repeat(64)] });
      expect(filter.status).toBe(201);
      const tooLong = await t.request("POST", "/api/v1/mailings", { ...good, tags_filter: ["😀".repeat(65)] });
      expectProblem(tooLong, 422, "tags_filter.0");
      expect(messageOf(tooLong, "tags_filter.0")).toBe("must be at most 64 characters");
    });

    test("?q= with no digit in it is refused instead of listing every client", async () => {
      const r = await t.request("GET", "/api/v1/clients?q=abc");
      expectProblem(r, 422, "q");
      expect(messageOf(r, "q")).toBe("must contain at least one digit of the phone number");
      expect((await t.request("GET", "/api/v1/clients?q=+7 (930)")).status).toBe(200);
    });

    const wrongTypes: [string, string, Record<string, unknown>, string, string][] = [
      ["tag: 5", "/api/v1/clients", { phone_number: "79300000003", tag: 5 }, "tag", "must be a string"],
      ["timezone: null", "/api/v1/clients", { phone_number: "79300000003", timezone: null }, "timezone", "must be an IANA time zone name, such as \"Europe/Moscow\""],
      ["phone_number: true", "/api/v1/clients", { phone_number: true }, "phone_number", 'must be a phone number, such as "+7 (910) 145-90-28" or 79101459028'],
      ["phone_number missing", "/api/v1/clients", { tag: "x" }, "phone_number", "is required"],
      ["phone_number of 40 characters", "/api/v1/clients", { phone_number: "1".repeat(40) }, "phone_number", "must be at most 32 characters"],
      ["text: 5", "/api/v1/mailings", { ...good, text: 5 }, "text", "must be a string"],
      ["text too long", "/api/v1/mailings", { ...good, text: "x".repeat(1001) }, "text", "must be at most 1000 characters"],
      ["start_time missing", "/api/v1/mailings", { text: "t", end_time: good.end_time }, "start_time", "is required"],
      ["tags_filter: \"vip\"", "/api/v1/mailings", { ...good, tags_filter: "vip" }, "tags_filter", 'must be a list of tags, such as ["vip", "new"]'],
      ["tags_filter: [5]", "/api/v1/mailings", { ...good, tags_filter: [5] }, "tags_filter.0", "must be a string"],
      ["send_window: \"x\"", "/api/v1/mailings", { ...good, send_window: "x" }, "send_window", 'must be null or an object, such as {"from": "09:00", "to": "21:00"}'],
      ["send_window.from: 9", "/api/v1/mailings", { ...good, send_window: { from: 9, to: "10:00" } }, "send_window.from", 'must be a time HH:MM, such as "09:00"'],
      ["1001 codes", "/api/v1/mailings", { ...good, codes_filter: Array(1001).fill(910) }, "codes_filter", "must have at most 1000 items"],
      ["codes_filter: [91]", "/api/v1/mailings", { ...good, codes_filter: [91] }, "codes_filter.0", "must be a 3-digit operator code, such as 910"],
      ["operator_code: 91", "/api/v1/clients", { phone_number: "79300000004", operator_code: 91 }, "operator_code", "must be a 3-digit operator code, such as 910"],
      ["token name: 5", "/api/v1/tokens", { name: 5 }, "name", "must be a string"],
    ];
    for (const [label, path, body, field, message] of wrongTypes) {
      test(`${label}: "${message}"`, async () => {
        const r = await t.request("POST", path, body);
        expectProblem(r, 422, field);
        expect(messageOf(r, field)).toBe(message);
        for (const e of r.body.errors) expect(e.message).not.toMatch(raw);
        expect(r.body.detail).not.toMatch(raw);
      });
    }

    test("a wrong method on a path that exists is a 405 problem with Allow", async () => {
      const collection = await t.request("DELETE", "/api/v1/clients");
      expectProblem(collection, 405);
      expect(collection.headers.get("allow")).toBe("GET, HEAD, POST");
      const item = await t.request("PUT", "/api/v1/mailings/1");
      expectProblem(item, 405);
      expect(item.headers.get("allow")).toBe("DELETE, GET, HEAD, PATCH");
      const health = await t.request("POST", "/healthz");
      expectProblem(health, 405);
      expect(health.headers.get("allow")).toBe("GET, HEAD");
      const missing = await t.request("DELETE", "/api/v1/nothing-here");
      expectProblem(missing, 404);
    });
  });
}
