/** CSV import from the clients page (issue 11): check, confirm, progress, report; nothing before the confirmation. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { Browser, origin, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const csv = "phone_number,tag,timezone\n79101112233,vip,Europe/Moscow\n79201112233,,UTC\nnot-a-phone,x,UTC\n";

async function upload(app: WebApp, b: Browser, body: string, csrf: string | null) {
  const form = new FormData();
  form.set("file", new Blob([body], { type: "text/csv" }), "clients.csv");
  if (csrf) form.set("_csrf", csrf);
  const response = await app.handle(
    new Request(`${origin}/web/clients/import`, { method: "POST", body: form, headers: { cookie: b.cookieHeader(), origin, "hx-request": "true" } }),
  );
  return { status: response.status, text: await response.text() };
}

for (const backend of backends()) {
  describe(`[${backend}] CSV import from the clients page`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    const clientCount = async () => (await app.database.rows<{ n: number }>(sql`select count(*)::int as n from clients`))[0]!.n;
    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app);
      await b.register("boss@example.com");
      csrf = await b.csrf();
      // An open mailing for operator code 910.
      const created = await b.post("/mailings", { text: "hi", start_time: "2026-12-01T09:00", end_time: "2026-12-02T21:00", codes: "910", _csrf: csrf });
      expect(created.status).toBe(303);
    });
    afterAll(() => app.close());

    test("an upload without the CSRF token is refused", async () => {
      expect((await upload(app, b, csv, null)).status).toBe(403);
    });

    test("the check says how many rows match open mailings, writes nothing; confirming imports with a report of rejected lines", async () => {
      const checked = await upload(app, b, csv, csrf);
      expect(checked.status).toBe(200);
      expect(checked.text).toContain("3 rows, 2 of them with a valid phone number.");
      expect(checked.text).toContain("1 of these clients match 1 open mailing(s) and will be sent to at once.");
      expect(await clientCount()).toBe(0);
      const job = /\/web\/clients\/import\/(imp_[\w-]+)\/start/.exec(checked.text)![1]!;
      // Another account cannot see or start this job.
      const other = new Browser(app);
      await other.register("op@example.com");
      expect((await other.get(`/web/clients/import/${job}`)).status).toBe(404);
      const started = await b.post(`/web/clients/import/${job}/start`, { _csrf: csrf });
      expect(started.status).toBe(200);
      let page = started.text;
      // Polled as the page does, with a pause: 100 polls in a tight loop ran out before a loaded
      // machine finished the import (bounded at 20 s).
      for (const until = Date.now() + 20_000; Date.now() < until && !page.includes("Import finished."); await Bun.sleep(50)) {
        expect(page).toContain("<progress");
        page = (await b.get(`/web/clients/import/${job}`)).text;
      }
      expect(page).toContain("2 added, 0 updated, 0 unchanged, 1 rejected.");
      expect(page).toMatch(/<td>4<\/td><td>phone_number<\/td>/);
      expect(await clientCount()).toBe(2);
      // The matching client was planned into the open mailing.
      const [row] = await app.database.rows<{ n: number }>(sql`select count(*)::int as n from messages`);
      expect(row!.n).toBe(1);
      // Starting again does not import twice.
      await b.post(`/web/clients/import/${job}/start`, { _csrf: csrf });
      expect(await clientCount()).toBe(2);
    });

    test("a file without a phone_number column is refused at the check", async () => {
      const reply = await upload(app, b, "name,tag\nx,y\n", csrf);
      expect(reply.status).toBe(200); // htmx: the form again, with the message
      expect(reply.text).toContain("the header must name a phone_number column");
    });
  });
}
