/**
 * The daily report (issue 13, item 3): at REPORT_CRON in REPORT_TIMEZONE, admins (users with role
 * admin, not disabled) get an e-mail through SMTP_URL summarising the mailings open during the
 * previous day in that zone: per mailing, its sent, failed, expired and cancelled messages so far
 * (from the counters, mailing_counts_live, never a count over messages).
 *
 * Once per day across replicas: the replica whose insert into daily_reports returns the row sends;
 * the others skip. The row is a lease: `claimed_at` is when a replica took the day on, and
 * `'infinity'` once the mail is out (no migration needed for a "sent" flag). A claim older than
 * `leaseMs` whose mail is not out (its replica died between claim and send) is taken over. If
 * sending fails, the row is deleted. The Croner job fires once a day on every replica, so each one
 * tries again every `retryMs` up to `attempts` times while the day is not sent: an SMTP server that
 * was down at REPORT_CRON, or a replica that crashed holding the day, still gets the day sent.
 */
import { Temporal } from "@js-temporal/polyfill";
import { Cron } from "croner";
import { sql } from "drizzle-orm";
import nodemailer, { type Transporter } from "nodemailer";
import type { Clock } from "../clock";
import type { Config } from "../config";
import type { Database } from "../db/client";
import type { Logger } from "./logger";
import { type Report, type ReportLocale, type ReportRow, renderReport } from "./report-text";

/** Mailings listed in one report at most (the totals still cover them all). */
const maxRows = 500;

export type RetryPolicy = { leaseMs: number; retryMs: number; attempts: number };

/** A claim lives 30 min (sending to every admin takes far less); tries every 10 min for 2 hours. */
export const defaultRetry: RetryPolicy = { leaseMs: 30 * 60_000, retryMs: 10 * 60_000, attempts: 12 };

export type ReportConfig = Pick<Config, "smtpUrl" | "reportCron" | "reportTimezone" | "reportFrom">;

/** The calendar day before `now` in `timezone`, and its bounds as instants. */
export function previousDay(now: Date, timezone: string): { day: string; from: Date; to: Date } {
  const today = Temporal.Instant.fromEpochMilliseconds(now.getTime()).toZonedDateTimeISO(timezone).toPlainDate();
  const day = today.subtract({ days: 1 });
  const start = (d: Temporal.PlainDate) => new Date(d.toZonedDateTime({ timeZone: timezone }).epochMilliseconds);
  return { day: day.toString(), from: start(day), to: start(today) };
}

export class DailyReport {
  private readonly transport: Transporter;
  private stopped = false;
  private wait: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly config: ReportConfig & { smtpUrl: string },
    /** claims older than leaseMs are taken over; the job tries `attempts` times, `retryMs` apart */
    private readonly retry: RetryPolicy = defaultRetry,
  ) {
    this.transport = nodemailer.createTransport(config.smtpUrl);
  }

  /** Builds the report of the day before `now` (in REPORT_TIMEZONE). */
  async build(now: Date): Promise<Report> {
    const { day, from, to } = previousDay(now, this.config.reportTimezone);
    const rows = await this.database.rows<ReportRow & { total: number }>(sql`
      select m.id as mailing_id, m.text,
        coalesce(sum(c.n) filter (where c.status in ('sent', 'delivered', 'undelivered')), 0)::int as sent,
        coalesce(sum(c.n) filter (where c.status = 'failed'), 0)::int as failed,
        coalesce(sum(c.n) filter (where c.status = 'expired'), 0)::int as expired,
        coalesce(sum(c.n) filter (where c.status = 'cancelled'), 0)::int as cancelled,
        count(*) over ()::int as total
      from mailings m left join mailing_counts_live c on c.mailing_id = m.id
      where m.starts_at < ${to.toISOString()}::timestamptz and m.ends_at >= ${from.toISOString()}::timestamptz
      group by m.id order by m.id limit ${maxRows}`);
    return {
      day,
      timezone: this.config.reportTimezone,
      rows: rows.map(({ total: _, ...row }) => row),
      omitted: Math.max(0, (rows[0]?.total ?? 0) - rows.length),
    };
  }

  /**
   * Sends the report of the day before `now` unless a replica already did; returns how many admins
   * it was sent to (null: another replica has the day).
   */
  async run(now: Date = this.clock.now()): Promise<number | null> {
    const result = await this.attempt(now);
    return typeof result === "number" ? result : null;
  }

  /**
   * Runs until the day is sent (by this replica or another), at most `attempts` times, `retryMs`
   * apart; what the Croner job calls. Errors are logged, never thrown.
   */
  async runUntilSent(now: Date = this.clock.now()): Promise<void> {
    for (let attempt = 1; attempt <= this.retry.attempts && !this.stopped; attempt++) {
      try {
        const result = await this.attempt(now);
        if (result !== "held") return;
      } catch (error) {
        this.logger.error("daily report failed", { error, attempt, attempts: this.retry.attempts });
      }
      if (attempt < this.retry.attempts) await new Promise<void>((resolve) => (this.wait = setTimeout(resolve, this.retry.retryMs)));
    }
  }

  /** A number: sent to that many admins; "held": another replica holds a live claim; "done": sent already. */
  private async attempt(now: Date): Promise<number | "held" | "done"> {
    const { day } = previousDay(now, this.config.reportTimezone);
    const at = this.clock.now();
    const staleBefore = new Date(at.getTime() - this.retry.leaseMs);
    const claimed = await this.database.rows(sql`
      insert into daily_reports (day, claimed_at) values (${day}::date, ${at.toISOString()}::timestamptz)
      on conflict (day) do update set claimed_at = excluded.claimed_at
        where daily_reports.claimed_at < ${staleBefore.toISOString()}::timestamptz
      returning day`);
    if (claimed.length === 0) {
      const [row] = await this.database.rows<{ done: boolean }>(
        sql`select claimed_at = 'infinity'::timestamptz as done from daily_reports where day = ${day}::date`,
      );
      const done = row?.done ?? false;
      this.logger.info(done ? "daily report already sent" : "daily report being sent by another replica", { day });
      return done ? "done" : "held";
    }
    try {
      const admins = await this.database.rows<{ email: string }>(
        sql`select email from users where role = 'admin' and not disabled order by id`,
      );
      if (admins.length === 0) {
        await this.markSent(day);
        this.logger.info("daily report skipped: no admin user", { day });
        return 0;
      }
      const report = await this.build(now);
      for (const admin of admins) {
        const mail = renderReport(report, localeOf(admin));
        await this.transport.sendMail({ from: this.config.reportFrom, to: admin.email, ...mail });
      }
      // A failure to write this leaves a claim that goes stale: the day could be sent twice, never lost.
      await this.markSent(day).catch((error) => this.logger.warn("daily report sent but not marked", { day, error }));
      this.logger.info("daily report sent", { day, recipients: admins.length, mailings: report.rows.length + report.omitted });
      return admins.length;
    } catch (error) {
      await this.database.rows(sql`delete from daily_reports where day = ${day}::date`).catch(() => {});
      throw error;
    }
  }

  private async markSent(day: string): Promise<void> {
    await this.database.rows(sql`update daily_reports set claimed_at = 'infinity'::timestamptz where day = ${day}::date`);
  }

  /** Starts the Croner job; returns a stop function (which also ends the retries). */
  schedule(): () => void {
    const job = new Cron(this.config.reportCron, { timezone: this.config.reportTimezone, protect: true }, () => this.runUntilSent());
    return () => {
      this.stopped = true;
      clearTimeout(this.wait);
      job.stop();
      this.transport.close();
    };
  }
}

/** Users have no language setting yet: everyone reads English (the Russian catalogue is ready). */
function localeOf(_user: { email: string }): ReportLocale {
  return "en";
}

/** Starts the daily report when SMTP_URL is set; otherwise says once that there is none. */
export function startDailyReport(database: Database, clock: Clock, logger: Logger, config: ReportConfig): (() => void) | null {
  if (!config.smtpUrl) {
    logger.info("daily report off (SMTP_URL is not set)");
    return null;
  }
  const report = new DailyReport(database, clock, logger, { ...config, smtpUrl: config.smtpUrl });
  logger.info("daily report scheduled", { cron: config.reportCron, timezone: config.reportTimezone });
  return report.schedule();
}
