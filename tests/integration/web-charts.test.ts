/** SPEC §9 charts: sends per minute kept by the send_minutes trigger (not a scan of messages), drawn as SVG with a table. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §9 send charts`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    let mailingId: number;
    const minutes = () =>
      app.database.rows<{ minute: string; n: number }>(
        sql`select to_char(minute at time zone 'UTC', 'HH24:MI') as minute, sum(n)::int as n from send_minutes where mailing_id = ${mailingId} group by 1 order by 1`,
      );
    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app);
      await b.register("boss@example.com");
      csrf = await b.csrf();
      for (const phone of ["79101112233", "79201112233", "79301112233"]) await b.post("/clients", { phone_number: phone, timezone: "Europe/Moscow", _csrf: csrf });
      const reply = await b.post("/mailings", { text: "Sale", start_time: "2026-11-30T09:00", end_time: "2026-12-02T21:00", _csrf: csrf });
      mailingId = Number(/\/mailings\/(\d+)$/.exec(reply.headers.get("location")!)![1]);
    });
    afterAll(() => app.close());

    test("rows becoming sent are counted in their sent_at minute, once, and no other update counts", async () => {
      const ids = (await app.database.rows<{ id: number }>(sql`select id from messages where mailing_id = ${mailingId} order by id`)).map((r) => r.id);
      // A claim (scheduled → sending) counts nothing.
      await app.database.rows(sql`update messages set status = 'sending' where mailing_id = ${mailingId}`);
      expect(await minutes()).toEqual([]);
      // One statement completing two sends in different minutes, then one more.
      await app.database.rows(sql`update messages set status = 'sent', sent_at = case when id = ${ids[0]!} then '2026-11-30T23:58:30Z'::timestamptz else '2026-11-30T23:59:10Z'::timestamptz end where id in (${ids[0]!}, ${ids[1]!})`);
      await app.database.rows(sql`update messages set status = 'sent', sent_at = '2026-11-30T23:59:50Z' where id = ${ids[2]!}`);
      expect(await minutes()).toEqual([{ minute: "23:58", n: 1 }, { minute: "23:59", n: 2 }]);
      // Touching sent rows again (same minute) nets zero.
      await app.database.rows(sql`update messages set attempts = attempts + 1 where mailing_id = ${mailingId}`);
      expect(await minutes()).toEqual([{ minute: "23:58", n: 1 }, { minute: "23:59", n: 2 }]);
    });

    test("the dashboard draws the last hour per minute with a title, a description and a table of the values", async () => {
      const page = await b.get("/");
      expect(page.status).toBe(200);
      const chart = /<figure class="chart" id="sends-chart">([\s\S]*?)<\/figure>/.exec(page.text)![1]!;
      expect(chart).toContain('role="img" aria-labelledby="sends-chart-title sends-chart-desc"');
      expect(chart).toContain("<title id=\"sends-chart-title\">Sends per minute, last hour</title>");
      expect(chart).toContain("3 sent from Nov 30, 2026, 11:01 PM UTC to Dec 1, 2026, 12:00 AM UTC; at most 2 in one bar.");
      expect(chart.match(/class="chart-bar"/g)).toHaveLength(2);
      const rows = [...chart.matchAll(/<tr><td>([^<]+)<\/td><td>(\d+)<\/td><\/tr>/g)].map((m) => [m[1], m[2]]);
      expect(rows).toEqual([["Nov 30, 2026, 11:58 PM UTC", "1"], ["Nov 30, 2026, 11:59 PM UTC", "2"]]);
      const ru = await b.get("/", { "accept-language": "ru" });
      expect(ru.text).toContain("Отправки в минуту за последний час");
    });

    test("a mailing's page draws its sends over time; deleting the mailing forgets them", async () => {
      const page = await b.get(`/mailings/${mailingId}`);
      const chart = /<figure class="chart" id="mailing-chart">([\s\S]*?)<\/figure>/.exec(page.text)![1]!;
      expect(chart.match(/class="chart-bar"/g)).toHaveLength(2);
      expect(page.text).toContain("one bar = 1 min");
      expect(await b.post(`/mailings/${mailingId}/delete`, { _csrf: csrf })).toMatchObject({ status: 303 });
      expect(await minutes()).toEqual([]);
    });
  });
}
