/**
 * Issue 11 charts × issue 15 receipts: a send stays in its minute of the chart when a delivery
 * receipt moves it on from `sent` to `delivered` or `undelivered`.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends, freshDatabase, type TestDatabase } from "../support/db";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] send_minutes and delivery receipts`, () => {
    let db: TestDatabase;
    afterEach(() => db.drop());

    test("sent → delivered / undelivered keeps the count; a cancel before sending never counted", async () => {
      db = await freshDatabase(backend);
      const total = async () =>
        (await db.database.rows<{ n: number }>(sql`select coalesce(sum(n), 0)::int as n from send_minutes where mailing_id = 1`))[0]!.n;
      await db.database.rows(sql`
        insert into messages (mailing_id, client_id, phone_number, status, attempts, due_at, expires_at, next_attempt_at)
        select 1, g, '7910000000' || g, 'sending', 1, now(), now() + interval '1 day', now() + interval '1 minute'
        from generate_series(1, 3) g`);
      await db.database.rows(sql`update messages set status = 'sent', sent_at = '2026-12-01T10:00:30Z' where id in (1, 2)`);
      expect(await total()).toBe(2);
      await db.database.rows(sql`update messages set status = 'delivered' where id = 1`);
      await db.database.rows(sql`update messages set status = 'undelivered', last_error = 'unreachable' where id = 2`);
      expect(await total()).toBe(2);
      await db.database.rows(sql`update messages set status = 'cancelled' where id = 3`);
      expect(await total()).toBe(2);
    });
  });
}
