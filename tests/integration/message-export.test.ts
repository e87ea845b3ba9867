/** A mailing's messages as CSV (issue 11): GET /api/v1/mailings/{id}/messages/export and the mailing page's link. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { Browser, webApp } from "../support/web";

setDefaultTimeout(120_000);

// More than one page (5,000 rows a query) of one status.
const clients = 5003;

for (const backend of backends()) {
  describe(`[${backend}] message export`, () => {
    let t: TestApp;
    let mailingId: number;
    beforeAll(async () => {
      t = await testApp(backend);
      const csv = "phone_number,tag,timezone\n" + Array.from({ length: clients }, (_, i) => `7910${String(i).padStart(7, "0")},t,Europe/Moscow`).join("\n");
      expect((await t.request("POST", "/api/v1/clients/import", csv, { authorization: "Bearer test-admin-key-0123456789", "content-type": "text/csv" })).status).toBe(200);
      const created = await t.request("POST", "/api/v1/mailings", { text: "Hi", start_time: "2026-12-01T09:00:00", end_time: "2026-12-02T21:00:00" });
      mailingId = created.body.id;
      await t.database.rows(sql`update messages set status = 'failed', attempts = 3, last_error = '=cmd,"x"' where mailing_id = ${mailingId} and phone_number = '79100000001'`);
      await t.database.rows(sql`update messages set status = 'sent', attempts = 1, sent_at = '2026-12-01T06:00:05Z' where mailing_id = ${mailingId} and phone_number = '79100000002'`);
    });
    afterAll(() => t.close());

    test("needs a bearer token; an unknown mailing is a 404 problem", async () => {
      expect((await t.request("GET", `/api/v1/mailings/${mailingId}/messages/export`, undefined, {})).status).toBe(401);
      const missing = await t.request("GET", "/api/v1/mailings/999999/messages/export");
      expect(missing.status).toBe(404);
      expect(missing.headers.get("content-type")).toStartWith("application/problem+json");
    });

    test("every message once, across pages and statuses, with status, phone, attempts, sent_at and last error", async () => {
      const reply = await t.request("GET", `/api/v1/mailings/${mailingId}/messages/export`);
      expect(reply.status).toBe(200);
      expect(reply.headers.get("content-type")).toStartWith("text/csv");
      expect(reply.headers.get("content-disposition")).toBe(`attachment; filename="mailing-${mailingId}-messages.csv"`);
      const lines = reply.text.trimEnd().split("\r\n");
      expect(lines[0]).toBe("id,phone_number,status,attempts,due_at,sent_at,last_error,provider_message_id");
      expect(lines.length).toBe(clients + 1);
      expect(new Set(lines.slice(1).map((l) => l.split(",")[0])).size).toBe(clients);
      expect(lines.find((l) => l.includes(",79100000002,"))).toMatch(/,79100000002,sent,1,2026-12-01T06:00:00Z,2026-12-01T06:00:05Z,,$/);
      // A formula in an error is defused and quoted.
      expect(lines.find((l) => l.includes(",79100000001,"))).toMatch(/,79100000001,failed,3,2026-12-01T06:00:00Z,,"'=cmd,""x""",$/);
    });

    test("a status narrows it; an unknown status is a 422 naming the field", async () => {
      const sent = (await t.request("GET", `/api/v1/mailings/${mailingId}/messages/export?status=sent`)).text.trimEnd().split("\r\n");
      expect(sent).toHaveLength(2);
      const bad = await t.request("GET", `/api/v1/mailings/${mailingId}/messages/export?status=nope`);
      expect(bad.status).toBe(422);
      expect(JSON.stringify(bad.body)).toContain('"field":"status"');
    });
  });

  test(`[${backend}] the mailing page links its export, which a signed-in user can download`, async () => {
    const app = await webApp(backend);
    try {
      const b = new Browser(app);
      await b.register("boss@example.com");
      const csrf = await b.csrf();
      await b.post("/clients", { phone_number: "79101112233", timezone: "Europe/Moscow", _csrf: csrf });
      const id = /\/mailings\/(\d+)$/.exec((await b.post("/mailings", { text: "Sale", start_time: "2026-12-01T09:00", end_time: "2026-12-02T21:00", _csrf: csrf })).headers.get("location")!)![1];
      expect((await b.get(`/mailings/${id}`)).text).toContain(`href="/mailings/${id}/export" download`);
      expect((await b.get(`/mailings/${id}?status=sent`)).text).toContain(`href="/mailings/${id}/export?status=sent" download`);
      const csv = await b.get(`/mailings/${id}/export`);
      expect(csv.status).toBe(200);
      expect(csv.text).toMatch(/^id,phone_number,status,attempts,due_at,sent_at,last_error,provider_message_id\r\n\d+,79101112233,scheduled,0,2026-12-01T06:00:00Z,,,\r\n$/);
      expect((await b.get("/mailings/424242/export")).status).toBe(404);
      expect((await new Browser(app).get(`/mailings/${id}/export`)).status).toBe(303);
    } finally {
      await app.close();
    }
  });
}
