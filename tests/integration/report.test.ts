/**
 * Issue 13, item 3: the daily report, sent through a local SMTP server (smtp-server) started here.
 * Two report instances with their own connections (two replicas) run for the same day at once:
 * every enabled admin gets exactly one e-mail, plain text and HTML (escaped), listing the mailings
 * open on the previous day in REPORT_TIMEZONE with their sent, failed, expired and cancelled counts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { FixedClock } from "../../src/clock";
import { type Database, openPostgres } from "../../src/db/client";
import { memoryLogger } from "../../src/ops/logger";
import { DailyReport, previousDay, startDailyReport } from "../../src/ops/report";
import { renderReport } from "../../src/ops/report-text";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { waitFor } from "../support/processes";

setDefaultTimeout(60_000);

type Mail = { from: string; to: string[]; raw: string };

function startSmtp(): Promise<{ server: SMTPServer; port: number; mails: Mail[] }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
        });
        callback();
      });
    },
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.server.address() as { port: number }).port, mails })));
}

test("the report day is the calendar day before the run in REPORT_TIMEZONE", () => {
  // 08:00 in Moscow on 2 December is 05:00 UTC: the day reported is 1 December, Moscow time.
  const d = previousDay(new Date("2026-12-02T05:00:00Z"), "Europe/Moscow");
  expect(d).toEqual({ day: "2026-12-01", from: new Date("2026-11-30T21:00:00Z"), to: new Date("2026-12-01T21:00:00Z") });
  expect(previousDay(new Date("2026-12-02T00:30:00Z"), "UTC").day).toBe("2026-12-01");
});

test("the Russian catalogue renders the same report; HTML escapes the mailing text", () => {
  const report = { day: "2026-12-01", timezone: "UTC", rows: [{ mailing_id: 1, text: "<b>Sale</b> & more", sent: 3, failed: 1, expired: 0, cancelled: 2 }], omitted: 0 };
  const ru = renderReport(report, "ru");
  expect(ru.subject).toBe("Ежедневный отчёт о рассылках за 2026-12-01");
  expect(ru.text).toContain("#1 <b>Sale</b> & more: отправлено 3, ошибка 1, просрочено 0, отменено 2");
  expect(ru.html).toContain("&lt;b&gt;Sale&lt;/b&gt; &amp; more");
  expect(ru.html).not.toContain("<b>Sale");
});

test("without SMTP_URL there is no job and one info line says so", () => {
  const logger = memoryLogger();
  const stop = startDailyReport({} as Database, new FixedClock("2026-12-02T08:00:00Z"), logger, {
    smtpUrl: null,
    reportCron: "0 8 * * *",
    reportTimezone: "UTC",
    reportFrom: "x@localhost",
  });
  expect(stop).toBeNull();
  expect(logger.lines).toEqual([expect.objectContaining({ level: "info", msg: "daily report off (SMTP_URL is not set)" })]);
});

for (const backend of backends()) {
  describe(`[${backend}] daily report`, () => {
    let db: TestDatabase;
    let second: Database;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    const clock = new FixedClock("2026-12-02T08:00:00Z");
    beforeAll(async () => {
      db = await freshDatabase(backend);
      // A second replica: its own connections to the same PostgreSQL database (PGlite: one process only).
      second = db.url ? openPostgres(db.url) : db.database;
      smtp = await startSmtp();
      await db.database.rows(sql`insert into users (email, role, disabled) values
        ('boss@example.com', 'admin', false), ('gone@example.com', 'admin', true), ('op@example.com', 'operator', false),
        ('deputy@example.com', 'admin', false)`);
      await db.database.rows(sql`insert into mailings (text, start_time, end_time, starts_at, ends_at) values
        ('<b>Winter</b> sale & "more"', '2026-11-30T09:00:00', '2026-12-03T21:00:00', '2026-11-30T09:00:00Z', '2026-12-03T21:00:00Z'),
        ('Long over', '2026-10-01T09:00:00', '2026-10-02T21:00:00', '2026-10-01T09:00:00Z', '2026-10-02T21:00:00Z')`);
      await db.database.rows(sql`insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
        select 1, g, '7900000000' || g, (array['sent','sent','sent','failed','expired','cancelled','scheduled'])[g], now(), now(), now()
        from generate_series(1, 7) g`);
    });
    afterAll(async () => {
      if (second !== db.database) await second.close();
      await db.drop();
      await new Promise<void>((resolve) => smtp.server.close(() => resolve()));
    });

    test("two replicas at once: each enabled admin gets exactly one e-mail, in text and escaped HTML", async () => {
      const config = { smtpUrl: `smtp://127.0.0.1:${smtp.port}`, reportCron: "0 8 * * *", reportTimezone: "UTC", reportFrom: "reports@example.com" };
      const logger = memoryLogger();
      const a = new DailyReport(db.database, clock, logger, config);
      const b = new DailyReport(second, clock, logger, config);
      const results = await Promise.all([a.run(), b.run()]);
      expect(results.sort()).toEqual([2, null]);
      expect(smtp.mails.map((m) => m.to).flat().sort()).toEqual(["boss@example.com", "deputy@example.com"]);
      // The next run for the same day, on either replica, sends nothing.
      expect(await a.run()).toBeNull();
      expect(smtp.mails).toHaveLength(2);

      const parsed = await simpleParser(smtp.mails[0]!.raw);
      expect(smtp.mails[0]!.from).toBe("reports@example.com");
      expect(parsed.subject).toBe("Daily mailing report for 2026-12-01");
      expect(parsed.text).toContain('#1 <b>Winter</b> sale & "more": sent 3, failed 1, expired 1, cancelled 1');
      expect(parsed.text).not.toContain("Long over");
      const html = String(parsed.html);
      expect(html).toContain("&lt;b&gt;Winter&lt;/b&gt; sale &amp; &quot;more&quot;");
      expect(html).not.toContain("<b>Winter");
      expect(html).toMatch(/<td>3<\/td><td>1<\/td><td>1<\/td><td>1<\/td>/);
      expect(logger.lines.filter((l) => l.msg === "daily report sent")).toHaveLength(1);
    });

    test("the Croner job fires at REPORT_CRON and sends the report", async () => {
      const config = { smtpUrl: `smtp://127.0.0.1:${smtp.port}`, reportCron: "* * * * * *", reportTimezone: "Europe/Moscow", reportFrom: "reports@example.com" };
      const logger = memoryLogger();
      const before = smtp.mails.length;
      const stop = startDailyReport(db.database, new FixedClock("2026-12-10T08:00:00Z"), logger, config)!;
      try {
        await waitFor(async () => (smtp.mails.length >= before + 2 ? true : undefined), 10_000, "the scheduled report", 50);
      } finally {
        stop();
      }
      expect(logger.lines.find((l) => l.msg === "daily report sent")).toMatchObject({ day: "2026-12-09", recipients: 2 });
    });

    test("a send that fails gives the day back, so a later run sends it", async () => {
      const config = { smtpUrl: "smtp://127.0.0.1:1", reportCron: "0 8 * * *", reportTimezone: "UTC", reportFrom: "reports@example.com" };
      const next = new FixedClock("2026-12-03T08:00:00Z");
      await expect(new DailyReport(db.database, next, memoryLogger(), config).run()).rejects.toThrow();
      const ok = new DailyReport(db.database, next, memoryLogger(), { ...config, smtpUrl: `smtp://127.0.0.1:${smtp.port}` });
      expect(await ok.run()).toBe(2);
    });

    test("a claim left by a replica that died before sending is taken over once stale; a live claim is not", async () => {
      const config = { smtpUrl: `smtp://127.0.0.1:${smtp.port}`, reportCron: "0 8 * * *", reportTimezone: "UTC", reportFrom: "reports@example.com" };
      const retry = { leaseMs: 30 * 60_000, retryMs: 10, attempts: 3 };
      // 2026-12-04 was claimed 2 h before the run and never sent; 2026-12-05 was claimed a minute ago.
      await db.database.rows(sql`insert into daily_reports (day, claimed_at) values
        ('2026-12-04', '2026-12-05T06:00:00Z'), ('2026-12-05', '2026-12-06T07:59:00Z')`);
      const logger = memoryLogger();
      expect(await new DailyReport(db.database, new FixedClock("2026-12-05T08:00:00Z"), logger, config, retry).run()).toBe(2);
      expect(await new DailyReport(db.database, new FixedClock("2026-12-05T09:00:00Z"), logger, config, retry).run()).toBeNull();
      expect(await new DailyReport(second, new FixedClock("2026-12-06T08:00:00Z"), logger, config, retry).run()).toBeNull();
      expect(logger.lines.map((l) => l.msg)).toEqual(["daily report sent", "daily report already sent", "daily report being sent by another replica"]);
    });

    test("the scheduled run tries again when the SMTP server refused the mail", async () => {
      let refusals = 1;
      const flaky = new SMTPServer({
        authOptional: true,
        disabledCommands: ["STARTTLS", "AUTH"],
        logger: false,
        onRcptTo(address, _session, callback) {
          if (refusals-- > 0) return callback(Object.assign(new Error("try later"), { responseCode: 451 }));
          smtp.mails.push({ from: "", to: [address.address], raw: "" });
          callback();
        },
      });
      const port = await new Promise<number>((resolve) => flaky.listen(0, "127.0.0.1", () => resolve((flaky.server.address() as { port: number }).port)));
      try {
        const config = { smtpUrl: `smtp://127.0.0.1:${port}`, reportCron: "0 8 * * *", reportTimezone: "UTC", reportFrom: "reports@example.com" };
        const logger = memoryLogger();
        const report = new DailyReport(db.database, new FixedClock("2026-12-08T08:00:00Z"), logger, config, { leaseMs: 60_000, retryMs: 10, attempts: 3 });
        await report.runUntilSent();
        expect(logger.lines.map((l) => l.msg)).toEqual(["daily report failed", "daily report sent"]);
        expect(logger.lines[1]).toMatchObject({ day: "2026-12-07", recipients: 2 });
      } finally {
        await new Promise<void>((resolve) => flaky.close(() => resolve()));
      }
    });
  });
}
