/**
 * The daily report (issue 13, item 3): at REPORT_CRON in REPORT_TIMEZONE, admins (users with role
 * admin, not disabled) get an e-mail through SMTP_URL summarising the mailings open during the
 * previous day in that zone: per mailing, its sent, failed, expired and cancelled messages so far
 * (from mailing_counts, never a count over messages).
 *
 * Once per day across replicas: the replica whose `insert … on conflict do nothing` into
 * daily_reports returns the row sends; the others skip. If sending fails, the row is deleted so a
 * later run (another replica's retry, or a manual `run`) can send it.
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

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly config: ReportConfig & { smtpUrl: string },
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
      from mailings m left join mailing_counts c on c.mailing_id = m.id
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
    const { day } = previousDay(now, this.config.reportTimezone);
    const claimed = await this.database.rows(sql`insert into daily_reports (day) values (${day}::date) on conflict do nothing returning day`);
    if (claimed.length === 0) {
      this.logger.info("daily report already sent by another replica", { day });
      return null;
    }
    try {
      const admins = await this.database.rows<{ email: string }>(
        sql`select email from users where role = 'admin' and not disabled order by id`,
      );
      if (admins.length === 0) {
        this.logger.info("daily report skipped: no admin user", { day });
        return 0;
      }
      const report = await this.build(now);
      for (const admin of admins) {
        const mail = renderReport(report, localeOf(admin));
        await this.transport.sendMail({ from: this.config.reportFrom, to: admin.email, ...mail });
      }
      this.logger.info("daily report sent", { day, recipients: admins.length, mailings: report.rows.length + report.omitted });
      return admins.length;
    } catch (error) {
      await this.database.rows(sql`delete from daily_reports where day = ${day}::date`).catch(() => {});
      throw error;
    }
  }

  /** Starts the Croner job; returns a stop function. */
  schedule(): () => void {
    const job = new Cron(this.config.reportCron, { timezone: this.config.reportTimezone, protect: true }, async () => {
      try {
        await this.run();
      } catch (error) {
        this.logger.error("daily report failed", { error });
      }
    });
    return () => {
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
