/**
 * Issue 13, item 3, with two real processes: two replicas on one PostgreSQL database, both with the
 * daily report's Croner job firing every second, send the day's report once: each admin gets one
 * e-mail, and only one process logs "daily report sent".
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { SMTPServer } from "smtp-server";
import { type TestDatabase, freshDatabase } from "../support/db";
import { type Worker, killAll, startWorker, waitFor } from "../support/processes";

setDefaultTimeout(90_000);

describe.skipIf(!process.env.DATABASE_URL)("[postgres] daily report across two processes", () => {
  const workers: Worker[] = [];
  afterAll(() => killAll(workers));

  test("two replicas firing every second send the day's report once", async () => {
    const db: TestDatabase = await freshDatabase("postgres");
    const recipients: string[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      onData(stream, session, callback) {
        stream.resume();
        stream.on("end", () => {
          recipients.push(...session.envelope.rcptTo.map((r) => r.address));
          callback();
        });
      },
    });
    const port = await new Promise<number>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve((smtp.server.address() as { port: number }).port)));
    try {
      await db.database.rows(sql`insert into users (email, role, disabled) values ('boss@example.com', 'admin', false), ('deputy@example.com', 'admin', false)`);
      const env = { SMTP_URL: `smtp://127.0.0.1:${port}`, REPORT_CRON: "* * * * * *", REPORT_TIMEZONE: "Asia/Vladivostok" };
      const started = await Promise.all(["a", "b"].map((name) => startWorker({ name, databaseUrl: db.url!, providerUrl: "", env })));
      workers.push(...started);
      const reportLines = (w: Worker) => w.lines.filter((l) => String(l.msg).startsWith("daily report") && l.msg !== "daily report scheduled");
      // Both have run the job (a replica that found the day held waits for its retry), and one
      // found the day sent afterwards.
      await waitFor(
        async () => (started.every((w) => reportLines(w).length >= 1) && started.some((w) => w.counts.get("daily report already sent")) ? true : undefined),
        30_000,
        "both replicas' report runs",
        100,
      );
      expect(recipients.sort()).toEqual(["boss@example.com", "deputy@example.com"]);
      const sent = started.flatMap((w) => reportLines(w).filter((l) => l.msg === "daily report sent"));
      expect(sent).toHaveLength(1);
      expect(started.flatMap(reportLines).filter((l) => l.level === "error")).toEqual([]);
    } finally {
      await killAll(workers.splice(0));
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
      await db.drop();
    }
  });
});
