/** SPEC §9: editing a mailing from its page through MailingService.update, with field errors; a cancelled one is not editable. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §9 editing a mailing`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    let mailingId: string;
    const row = async () =>
      (await app.database.rows<{ text: string; codes: string[]; start_time: string }>(sql`select text, codes_filter as codes, start_time from mailings where id = ${Number(mailingId)}`))[0]!;
    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app);
      await b.register("boss@example.com");
      csrf = await b.csrf();
      for (const phone of ["79101112233", "79201112233"]) await b.post("/clients", { phone_number: phone, timezone: "Europe/Moscow", _csrf: csrf });
      const reply = await b.post("/mailings", { text: "Sale", start_time: "2026-12-01T09:00", end_time: "2026-12-02T21:00", _csrf: csrf });
      mailingId = /\/mailings\/(\d+)$/.exec(reply.headers.get("location")!)![1]!;
    });
    afterAll(() => app.close());

    const form = (over: Record<string, string>) => ({ text: "Sale", start_time: "2026-12-01T09:00", end_time: "2026-12-02T21:00", tags: "", codes: "", window_from: "", window_to: "", _csrf: csrf, ...over });

    test("the page offers the form filled with the mailing and its time-zone preview", async () => {
      const page = await b.get(`/mailings/${mailingId}`);
      expect(page.text).toContain(`action="/mailings/${mailingId}/edit" hx-patch="/mailings/${mailingId}"`);
      expect(page.text).toMatch(/id="m-start_time"[^>]*value="2026-12-01T09:00"/);
      expect(page.text).toContain('hx-get="/mailings/preview"');
    });

    test("a plain form post and an htmx PATCH both change the mailing and re-plan it", async () => {
      const plain = await b.post(`/mailings/${mailingId}/edit`, form({ text: "Big sale", codes: "910" }));
      expect(plain.status).toBe(303);
      expect(await row()).toMatchObject({ text: "Big sale", codes: ["910"] });
      const [planned] = await app.database.rows<{ n: number }>(sql`select count(*)::int as n from messages where mailing_id = ${Number(mailingId)} and status <> 'cancelled'`);
      expect(planned!.n).toBe(1);
      const htmx = await b.send("PATCH", `/mailings/${mailingId}`, { form: form({ text: "Bigger sale", codes: "910" }), headers: { "hx-request": "true" } });
      expect(htmx.status).toBe(200);
      expect(htmx.headers.get("hx-redirect")).toBe(`/mailings/${mailingId}`);
      expect((await row()).text).toBe("Bigger sale");
    });

    test("a field error comes back beside its field with everything typed kept; nothing changes", async () => {
      const reply = await b.post(`/mailings/${mailingId}/edit`, form({ text: "Typed", end_time: "2026-11-30T09:00", codes: "910" }));
      expect(reply.status).toBe(422);
      expect(reply.text).toContain('id="m-end_time-error"');
      expect(reply.text).toMatch(/<details class="edit-mailing" open>/);
      expect(reply.text).toMatch(/id="m-text"[^>]*>Typed<\/textarea>/);
      expect((await row()).text).toBe("Bigger sale");
    });

    test("a cancelled mailing shows no form and refuses an edit with 409", async () => {
      await b.post(`/mailings/${mailingId}/cancel`, { _csrf: csrf });
      expect((await b.get(`/mailings/${mailingId}`)).text).not.toContain('id="mailing-form"');
      const reply = await b.post(`/mailings/${mailingId}/edit`, form({ text: "After cancel" }));
      expect(reply.status).toBe(409);
      expect(reply.text).toContain("A cancelled mailing cannot be changed.");
      expect((await row()).text).toBe("Bigger sale");
    });

    test("an edit without the CSRF token changes nothing", async () => {
      const reply = await b.post(`/mailings/${mailingId}/edit`, { ...form({ text: "Forged" }), _csrf: "" });
      expect(reply.status).toBe(403);
      expect((await row()).text).toBe("Bigger sale");
    });
  });
}
