import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { auth, type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { ImportChecker } from "../../src/clients/import-check";
import { expectProblem } from "./expect-problem";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §8 CSV import`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend, { now: "2026-12-01T10:00:00Z" });
    });
    afterAll(() => t.close());

    const csv = (_body: string) => ({ ...auth, "content-type": "text/csv" });

    test("imports valid rows, reports invalid ones with line and field, and updates known phones", async () => {
      await t.request("POST", "/api/v1/clients", { phone_number: "79100000001", tag: "old" });
      const body = [
        "phone_number,tag,timezone",
        "79100000001,new,Europe/Moscow",
        "+7 (910) 000-00-02,vip,Asia/Vladivostok",
        "89100000003,,",
        "12345,x,UTC",
        "79100000004,y,Asia/Unknown",
      ].join("\n");
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ rows: 5, created: 2, updated: 1, failed: 2 });
      expect(r.body.errors).toEqual([
        { line: 5, field: "phone_number", message: expect.any(String) },
        { line: 6, field: "timezone", message: '"Asia/Unknown" is not an IANA time zone' },
      ]);
      const list = await t.request("GET", "/api/v1/clients?limit=100");
      const byPhone = Object.fromEntries(list.body.items.map((c: { phone_number: string }) => [c.phone_number, c]));
      expect(byPhone["79100000001"]).toMatchObject({ tag: "new", timezone: "Europe/Moscow" });
      expect(byPhone["79100000002"]).toMatchObject({ tag: "vip", timezone: "Asia/Vladivostok", operator_code: "910" });
      expect(byPhone["79100000003"]).toMatchObject({ tag: "", timezone: "UTC" });
    });

    test("imported clients are planned into open mailings in their own zone", async () => {
      const m = await t.request("POST", "/api/v1/mailings", { text: "x", start_time: "2026-12-01T12:00:00", end_time: "2026-12-01T20:00:00" });
      const body = "phone_number,timezone\n79200000001,Europe/Moscow\n79200000002,America/New_York\n";
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.body.created).toBe(2);
      const rows = await t.database.rows<{ phone_number: string; due: string }>(sql`
        select phone_number, to_char(due_at at time zone 'UTC', 'HH24:MI') as due from messages
        where mailing_id = ${m.body.id} and phone_number like '792%' order by phone_number`);
      expect(rows).toEqual([
        { phone_number: "79200000001", due: "09:00" },
        { phone_number: "79200000002", due: "17:00" },
      ]);
    });

    test("a CSV without a phone_number column is a 422 and changes nothing", async () => {
      const before = (await t.request("GET", "/api/v1/clients?limit=1000")).body.items.length;
      const body = "phone,tag\n79300000001,x\n";
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.status).toBe(422);
      expect(r.body.errors[0].field).toBe("phone_number");
      expect((await t.request("GET", "/api/v1/clients?limit=1000")).body.items.length).toBe(before);
    });

    test("Accept: application/x-ndjson streams progress per batch and the report last", async () => {
      const lines = ["phone_number"];
      for (let i = 0; i < 12_000; i++) lines.push(`794${String(i).padStart(8, "0")}`);
      const body = lines.join("\n");
      const r = await t.request("POST", "/api/v1/clients/import", body, { ...csv(body), accept: "application/x-ndjson" });
      expect(r.status).toBe(200);
      const events = r.text.trim().split("\n").map((l) => JSON.parse(l));
      expect(events.filter((e) => e.progress).map((e) => e.progress.created)).toEqual([5000, 10000, 12000]);
      expect(events.at(-1).done).toMatchObject({ rows: 12000, created: 12000, failed: 0 });
    });

    test("x-ndjson: an unexpected error mid-import ends the stream with a 500 line and is logged with the request id", async () => {
      // A constraint the importer does not know: its batch fails with 23514, neither a Problem nor "database away".
      await t.database.rows(sql`alter table clients add constraint no_boom check (tag <> 'boom')`);
      try {
        const body = "phone_number,tag\n79160000001,boom\n";
        const r = await t.request("POST", "/api/v1/clients/import", body, { ...csv(body), accept: "application/x-ndjson", "x-request-id": "ndjson-boom-1" });
        expect(r.status).toBe(200);
        const events = r.text.trim().split("\n").map((l) => JSON.parse(l));
        expect(events.at(-1)).toEqual({ error: { status: 500, detail: "the import failed; it has been logged" } });
        const logged = t.logger.lines.filter((l) => l.msg === "import failed");
        expect(logged).toHaveLength(1);
        expect(logged[0]).toMatchObject({ level: "error", request_id: "ndjson-boom-1", route: "/api/v1/clients/import" });
        expect(JSON.stringify(logged[0])).toContain("23514");
      } finally {
        await t.database.rows(sql`alter table clients drop constraint no_boom`);
      }
    });

    const phones = async (prefix: string) =>
      (await t.request("GET", `/api/v1/clients?limit=1000&q=${prefix}`)).body.items.map((c: { phone_number: string; tag: string }) => `${c.phone_number}:${c.tag}`);

    test("a stray quote inside a field is a reported bad row; the rows before and after it are imported", async () => {
      const body = 'phone_number,tag\n79150000001,a\n79150000007,ab"c\n79150000002,b\n';
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ created: 2, failed: 1 });
      expect(r.body.errors).toEqual([{ line: 3, field: "row", message: expect.stringContaining("quote") }]);
      expect(await phones("7915000000")).toEqual(["79150000001:a", "79150000002:b"]);
    });

    test("a quote never closed ends the reading, not the import: the rows before it are saved and the line is reported", async () => {
      const rows = ["phone_number,tag"];
      for (let i = 0; i < 6000; i++) rows.push(`7916${String(i).padStart(7, "0")},x`);
      rows.push('79169999999,"open');
      rows.push("79169999998,lost");
      const body = rows.join("\n");
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ created: 6000, failed: 1 });
      expect(r.body.errors).toEqual([
        { line: 6002, field: "row", message: "a quoted field opened here is never closed, so lines 6002–6003 could not be read; close the quote" },
      ]);
    });

    test("a header whose only row is malformed is not an empty file: the row is reported at its line", async () => {
      for (const [body, message] of [
        ['phone_number,tag\n"79220000001,open\n', "a quoted field opened here is never closed, so line 2 could not be read; close the quote"],
        ['phone_number,tag\n79220000002,ab"c\n', 'a quote inside an unquoted field; quote the whole field and double the quotes inside it ("ab""c")'],
      ] as const) {
        const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ rows: 0, created: 0, failed: 1, errors: [{ line: 2, field: "row", message }] });
      }
    });

    test("a header with no rows imports nothing (200), and one without phone_number names the column, not an empty file", async () => {
      const ok = await t.request("POST", "/api/v1/clients/import", "phone_number,tag\n", csv(""));
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ rows: 0, created: 0, failed: 0 });
      const bad = await t.request("POST", "/api/v1/clients/import", "tag,timezone\n", csv(""));
      expectProblem(bad, 422, "phone_number");
      expect(bad.body.detail).toContain("must name a phone_number column");
    });

    test("a multipart/form-data upload with one file (a browser form, curl -F file=@clients.csv) is imported", async () => {
      const form = new FormData();
      form.append("note", "ignored");
      form.append("file", new Blob(["phone_number,tag\n79170000001,form\n79170000002,form\n"], { type: "text/csv" }), "clients.csv");
      const r = await t.request("POST", "/api/v1/clients/import", form, auth);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ rows: 2, created: 2, failed: 0 });
      expect(await phones("7917000000")).toEqual(["79170000001:form", "79170000002:form"]);
    });

    test("a multipart upload cut off before its closing boundary is a 400 problem (it crashed the process)", async () => {
      const boundary = "----cut";
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\nContent-Type: text/csv\r\n\r\nphone_number\n79160000001\n`;
      const r = await t.request("POST", "/api/v1/clients/import", body, { ...auth, "content-type": `multipart/form-data; boundary=${boundary}` });
      expectProblem(r, 400, "body");
      expect(r.body.detail).toContain("multipart");
    });

    for (const [label, type] of [["no boundary", "multipart/form-data"], ["a boundary that never appears", "multipart/form-data; boundary=zz"]]) {
      test(`a multipart body with ${label} is a 4xx problem`, async () => {
        const r = await t.request("POST", "/api/v1/clients/import", "garbage", { ...auth, "content-type": type! });
        expect([400, 422]).toContain(r.status);
        expectProblem(r, r.status);
      });
    }

    test("a form without a file is a 422 naming file", async () => {
      const form = new FormData();
      form.append("phone_number", "79170000009");
      const r = await t.request("POST", "/api/v1/clients/import", form, auth);
      expectProblem(r, 422, "file");
    });

    test("a semicolon-separated file (a spreadsheet in a decimal-comma locale) is read by its header", async () => {
      const body = "phone_number;tag;timezone\r\n79180000001;semi;Europe/Moscow\r\n";
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ created: 1, failed: 0 });
      const [client] = (await t.request("GET", "/api/v1/clients?q=79180000001")).body.items;
      expect(client).toMatchObject({ tag: "semi", timezone: "Europe/Moscow" });
    });

    for (const type of ["application/json", "application/x-www-form-urlencoded", "image/png"]) {
      test(`Content-Type ${type} is a 415 problem naming the accepted types, and nothing is imported`, async () => {
        const body = "phone_number\n79190000001\n";
        const r = await t.request("POST", "/api/v1/clients/import", body, { ...auth, "content-type": type });
        expectProblem(r, 415, "content-type");
        expect(r.body.detail).toContain("text/csv");
        expect(await phones("79190000001")).toEqual([]);
      });
    }

    test("the browser's pre-import check reads a file as the import does: a `;` separator, a malformed row skipped", async () => {
      const checker = new ImportChecker(t.database, t.clock);
      expect(await checker.check("phone_number;tag\r\n79230000001;a\r\n79230000002;b\r\n")).toMatchObject({ ok: true, rows: 2, valid: 2 });
      expect(await checker.check('phone_number,tag\n79230000003,a\n79230000004,ab"c\n79230000005,b\n')).toMatchObject({ ok: true, rows: 2, valid: 2 });
    });

    test("a tag is counted in characters: 64 emoji are accepted, 65 refused", async () => {
      const body = `phone_number,tag\n79210000001,${"😀".repeat(64)}\n79210000002,${"😀".repeat(65)}\n`;
      const r = await t.request("POST", "/api/v1/clients/import", body, csv(body));
      expect(r.body).toMatchObject({ created: 1, failed: 1 });
      expect(r.body.errors).toEqual([{ line: 3, field: "tag", message: "must be at most 64 characters" }]);
    });

    test("the import needs a bearer token", async () => {
      const r = await t.request("POST", "/api/v1/clients/import", "phone_number\n79500000001\n", { "content-type": "text/csv" });
      expect(r.status).toBe(401);
    });
  });
}
