/** Client export as CSV (issue 11): GET /api/v1/clients/export and the clients page's link. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { csvField } from "../../src/clients/export";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";

setDefaultTimeout(60_000);

test("CSV fields: quoted when needed; formulas defused", () => {
  expect(csvField("plain")).toBe("plain");
  expect(csvField('a,"b"')).toBe('"a,""b"""');
  expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
  expect(csvField("line\nbreak")).toBe('"line\nbreak"');
});

for (const backend of backends()) {
  describe(`[${backend}] client export`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend);
      for (let i = 0; i < 1205; i++) {
        const tag = i === 0 ? 'vip, "gold"' : i % 2 ? "odd" : "even";
        const reply = await t.request("POST", "/api/v1/clients", { phone_number: `7910${String(i).padStart(7, "0")}`, tag });
        expect(reply.status).toBe(201);
      }
    });
    afterAll(() => t.close());

    test("needs a bearer token", async () => {
      expect((await t.request("GET", "/api/v1/clients/export", undefined, {})).status).toBe(401);
    });

    test("every client once, across pages, in the import's columns", async () => {
      const reply = await t.request("GET", "/api/v1/clients/export");
      expect(reply.status).toBe(200);
      expect(reply.headers.get("content-type")).toStartWith("text/csv");
      const lines = reply.text.trimEnd().split("\r\n");
      expect(lines[0]).toBe("phone_number,operator_code,tag,timezone,attributes,created_at");
      expect(lines.length).toBe(1206);
      expect(new Set(lines.slice(1).map((l) => l.split(",")[0])).size).toBe(1205);
      expect(lines[1]).toStartWith('79100000000,910,"vip, ""gold""",UTC,,');
    });

    test("the list's filters apply", async () => {
      const odd = await t.request("GET", "/api/v1/clients/export?tag=odd&q=100000013");
      const lines = odd.text.trimEnd().split("\r\n");
      expect(lines.slice(1).map((l) => l.split(",")[0])).toEqual(["79100000013"]);
      expect((await t.request("GET", "/api/v1/clients/export?tag=" + "x".repeat(65))).status).toBe(422);
    });

    test("an export imports again without changes", async () => {
      const csv = (await t.request("GET", "/api/v1/clients/export")).text;
      const reply = await t.request("POST", "/api/v1/clients/import", csv, { authorization: "Bearer test-admin-key-0123456789", "content-type": "text/csv" });
      expect(reply.status).toBe(200);
      expect(reply.body.unchanged).toBe(1205);
      expect(reply.body.failed).toBe(0);
    });
  });
}
