/** SPEC §9 mailing pages through app.handle: create with field errors, list by status, detail, actions. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const xss = "<img src=x onerror=alert(1)>";

for (const backend of backends()) {
  describe(`[${backend}] §9 mailing pages`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    let mailingId: string;
    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app);
      await b.register("boss@example.com");
      csrf = await b.csrf();
      for (const phone of ["79101112233", "79201112233"]) await b.post("/clients", { phone_number: phone, timezone: "Europe/Moscow", _csrf: csrf });
    });
    afterAll(() => app.close());

    test("the time-zone preview counts matching clients per zone with each zone's start in local time and UTC", async () => {
      await b.post("/clients", { phone_number: "79141112233", timezone: "Asia/Vladivostok", _csrf: csrf });
      const q = (params: Record<string, string>) => b.get(`/mailings/preview?${new URLSearchParams(params)}`, { "hx-request": "true" });
      const empty = await q({ start_time: "", end_time: "" });
      expect(empty.text).toContain("Enter a start and an end");
      const all = await q({ start_time: "2026-12-01T09:00", end_time: "2026-12-01T21:00" });
      expect(all.text).toContain("3 clients match.");
      const rows = [...all.text.matchAll(/<tr[^>]*>\s*<td>([^<]+)<\/td>\s*<td>(\d+)<\/td>\s*<td>([^<]+)<\/td>\s*<td>([^<]+)<\/td>\s*<td>(.*?)<\/td>/gs)].map((m) => m.slice(1).map((x) => x.trim()));
      expect(rows).toEqual([
        ["Europe/Moscow", "2", "Dec 1, 2026, 9:00 AM", "Dec 1, 2026, 6:00 AM UTC", ""],
        // 09:00 in Vladivostok is 23:00 UTC the day before: already due at the test's 00:00 UTC.
        ["Asia/Vladivostok", "1", "Dec 1, 2026, 9:00 AM", "Nov 30, 2026, 11:00 PM UTC", "Already due: sent as soon as the mailing is created."],
      ]);
      const filtered = await q({ start_time: "2026-12-01T07:00", end_time: "2026-12-01T08:00", codes: "914" });
      expect(filtered.text).toContain("1 clients match.");
      expect(filtered.text).toContain("Window already over");
      expect((await q({ start_time: "2026-12-01T07:00", end_time: "2026-12-01T08:00", tags: "nobody" })).text).toContain("No client matches");
      // The text's SMS length, as the API's `sms` (issue 15 item 3): Cyrillic is UCS-2.
      expect((await q({ text: "Привет, {{phone_number}}!", start_time: "", end_time: "" })).text).toContain("Longest text: 20 characters in UCS-2, 1 SMS.");
      expect((await q({ text: "a".repeat(161), start_time: "", end_time: "" })).text).toContain("161 characters in GSM-7, 2 SMS.");
      await b.send("DELETE", `/clients/${/client-(\d+)/.exec((await b.get("/clients?q=79141112233")).text)![1]}`, { headers: { "x-csrf-token": csrf } });
    });

    test("field errors come back beside their fields with everything typed kept; nothing is created", async () => {
      const reply = await b.post("/mailings", { text: "", start_time: "2026-12-02T09:00", end_time: "2026-12-01T09:00", codes: "91", tags: "vip", _csrf: csrf });
      expect(reply.status).toBe(422);
      expect(reply.text).toContain('id="m-text-error"');
      expect(reply.text).toContain('id="m-end_time-error"');
      expect(reply.text).toContain('id="m-codes-error"');
      expect(reply.text).toMatch(/id="m-tags"[^>]*value="vip"/);
      expect(reply.text).toMatch(/id="m-start_time"[^>]*value="2026-12-02T09:00"/);
      const [row] = await app.database.rows<{ n: number }>(sql`select count(*)::int as n from mailings`);
      expect(row!.n).toBe(0);
    });

    test("a mailing created through the form opens its page; text of markup is shown as text", async () => {
      const reply = await b.post("/mailings", { text: xss, start_time: "2026-12-01T09:00", end_time: "2026-12-02T21:00", codes: "910", _csrf: csrf });
      expect(reply.status).toBe(303);
      mailingId = /\/mailings\/(\d+)$/.exec(reply.headers.get("location")!)![1]!;
      const page = await b.get(`/mailings/${mailingId}`);
      expect(page.status).toBe(200);
      expect(page.text).toContain("&lt;img src=x onerror=alert(1)&gt;");
      expect(page.text).not.toContain(xss);
      expect(page.text).toMatch(/data-status="scheduled">1</);
      // The message with its client's zone and its planned time there (09:00 Moscow = 06:00 UTC).
      expect(page.text).toMatch(
        /<td data-label="Phone">79101112233<\/td><td data-label="Status">scheduled<\/td><td data-label="Time zone">Europe\/Moscow<\/td><td data-label="[^"]+"><span>Dec 1, 2026, 9:00 AM <small class="muted">\(Dec 1, 2026, 6:00 AM UTC\)<\/small><\/span><\/td>/,
      );
      // A message waiting: the counts poll.
      expect(page.text).toContain(`hx-get="/mailings/${mailingId}" hx-trigger="every 3s"`);
      // 09:00 has come somewhere (UTC+14) at the test's 00:00 UTC: the mailing is running.
      expect(page.text).toContain("badge-running");
      const list = await b.get("/mailings?status=running");
      expect(list.text).toContain(`href="/mailings/${mailingId}"`);
      expect((await b.get("/mailings?status=finished")).text).not.toContain(`href="/mailings/${mailingId}"`);
    });

    test("pause stops the polling, resume and cancel work, delete removes it", async () => {
      expect((await b.post(`/mailings/${mailingId}/pause`, { _csrf: csrf })).status).toBe(303);
      const paused = await b.get(`/mailings/${mailingId}`);
      expect(paused.text).toContain("badge-paused");
      // (the edit form's time-zone preview has its own trigger; the counts poll no more)
      expect(paused.text).not.toContain('hx-trigger="every');
      expect((await b.post(`/mailings/${mailingId}/resume`, { _csrf: csrf })).status).toBe(303);
      expect((await b.get(`/mailings/${mailingId}`)).text).toContain("badge-running");
      expect((await b.post(`/mailings/${mailingId}/cancel`, { _csrf: csrf })).status).toBe(303);
      expect((await b.get(`/mailings/${mailingId}`)).text).toContain("badge-cancelled");
      expect((await b.post(`/mailings/${mailingId}/delete`, {})).status).toBe(403); // no CSRF token
      const deleted = await b.post(`/mailings/${mailingId}/delete`, { _csrf: csrf }, { "hx-request": "true" });
      expect(deleted.headers.get("hx-redirect")).toBe("/mailings");
      expect((await b.get(`/mailings/${mailingId}`)).status).toBe(404);
    });
  });
}
