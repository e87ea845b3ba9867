/**
 * Issue 16: after a mailing plans many messages, the planner's statistics of `messages` are
 * refreshed (ANALYZE), so the claim reads the due index in order instead of sorting every due row
 * for each batch (src/dispatch/plan.ts, analyzeAfterRows). Autovacuum is off on the test machine,
 * so without the refresh the statistics still describe the table before the mailing. Needs
 * DATABASE_URL.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { systemClock } from "../../src/clock";
import { claimStatement } from "../../src/dispatch/claim";
import { analyzeAfterRows, planMailing } from "../../src/dispatch/plan";
import { rowsOf } from "../../src/db/client";
import { mailings } from "../../src/db/schema";
import { toPlannable } from "../../src/mailings/repo";
import { MailingService } from "../../src/mailings/service";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { waitFor } from "../support/wait";

setDefaultTimeout(60_000);

// PostgreSQL only: on PGlite the same holds, but planning 10,000 messages there takes a minute here.
for (const backend of backends().filter((b) => b === "postgres")) {
  describe(`[${backend}] planner statistics after a large plan`, () => {
    let tdb: TestDatabase | undefined;
    afterEach(() => tdb?.drop());

    test(`a mailing of ${analyzeAfterRows} messages: messages is analyzed, and the claim reads the due index in order and its rows, clients and mailings by key`, async () => {
      tdb = await freshDatabase(backend);
      const { database } = tdb;
      await database.rows(sql`
        insert into clients (phone_number, operator_code, tag, timezone)
        select '7' || lpad(g::text, 10, '0'), '900', 'stats', 'UTC' from generate_series(1, ${analyzeAfterRows}::int) g`);
      await database.rows(sql`analyze messages`); // the statistics of the table before the mailing: empty
      const service = new MailingService(database, systemClock, { wake() {}, mailingChanged() {}, clientChanged() {} });
      await service.create({ text: "Hello", start_time: "2020-01-01T00:00:00", end_time: "2099-12-31T23:59:59" });
      const tuples = async () => (await database.rows<{ n: number }>(sql`select reltuples::int as n from pg_class where relname = 'messages'`))[0]!.n;
      await waitFor(async () => ((await tuples()) >= analyzeAfterRows * 0.9 ? true : undefined), 20_000, "messages analyzed", 100);
      const plan = await database.rows<Record<string, string>>(
        sql.raw(`explain select id from messages where status in ('scheduled', 'retrying', 'sending') and next_attempt_at <= now()
                 order by next_attempt_at limit 500 for update skip locked`),
      );
      const text = plan.map((r) => Object.values(r)[0]).join("\n");
      expect(text).toContain("Index Scan using messages_due_idx");
      expect(text).not.toContain("Sort");

      // The claim itself, with those statistics: its rows, their clients and mailings are looked up by
      // key, no table is read whole. With plain joins PostgreSQL hashed every client (and here every
      // message) for each claim once messages was analyzed (src/dispatch/claim.ts, claimStatement).
      const claimPlan = (await database.rows<Record<string, string>>(sql`explain ${claimStatement(new Date(), 500, 60)}`))
        .map((r) => Object.values(r)[0])
        .join("\n");
      expect(claimPlan).toContain("Index Scan using messages_due_idx");
      expect(claimPlan).toContain("Index Scan using clients_pkey");
      expect(claimPlan).toContain("Index Scan using mailings_pkey");
      expect(claimPlan).toContain("Index Scan using messages_pkey");
      expect(claimPlan).not.toMatch(/Seq Scan on (clients|mailings|messages)\b/);
    });

    test("a planning transaction compiles nothing (jit off): compiling the planning statement cost more than it saved", async () => {
      tdb = await freshDatabase(backend);
      const { database } = tdb;
      const [server] = await database.rows<{ jit: string }>(sql`select current_setting('jit') as jit`);
      const now = new Date();
      const jit = await database.db.transaction(async (tx) => {
        // On, as PostgreSQL's default has it, whatever this server's setting.
        await tx.execute(sql`set local jit = on`);
        const [row] = await tx
          .insert(mailings)
          .values({ text: "Hello", startTime: "2020-01-01T00:00:00", endTime: "2099-12-31T23:59:59", startsAt: new Date("2019-12-31T10:00:00Z"), endsAt: new Date("2100-01-01T12:00:00Z"), createdAt: now, updatedAt: now })
          .returning();
        await planMailing(tx, toPlannable(row!), now, { fresh: true });
        const [setting] = await rowsOf<{ jit: string }>(tx, sql`select current_setting('jit') as jit`);
        return setting!.jit;
      });
      expect(jit).toBe("off");
      const [after] = await database.rows<{ jit: string }>(sql`select current_setting('jit') as jit`);
      expect(after!.jit).toBe(server!.jit); // local to the planning's transaction
    });
  });
}
