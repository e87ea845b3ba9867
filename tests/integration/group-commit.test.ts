/**
 * SPEC §6 group commit under errors that retrying cannot fix: a result PostgreSQL refuses for good
 * must not hold its batch's send slots, and with them all sending, for ever.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { FixedClock } from "../../src/clock";
import type { Completion } from "../../src/dispatch/complete";
import { GroupCommit, type PendingResult } from "../../src/dispatch/group-commit";
import { memoryLogger } from "../../src/ops/logger";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { waitFor } from "../support/wait";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §6 group commit and refused results`, () => {
    let db: TestDatabase;
    afterEach(() => db.drop());

    /** Five claimed messages (attempts 1), ids 1–5. */
    async function claimed(): Promise<void> {
      db = await freshDatabase(backend);
      await db.database.rows(sql`
        insert into messages (mailing_id, client_id, phone_number, status, attempts, due_at, expires_at, next_attempt_at)
        select 1, g, '7910000000' || g, 'sending', 1, now(), now() + interval '1 day', now() + interval '1 minute'
        from generate_series(1, 5) g`);
    }

    /** Writes the completions; resolves with what onWritten heard (id → durable). */
    function commit(completions: Completion[], logger = memoryLogger()): Promise<Map<number, boolean>> {
      const heard = new Map<number, boolean>();
      return new Promise((resolve) => {
        const group = new GroupCommit<number>(db.database, new FixedClock("2026-12-01T00:00:00Z"), logger, (batch: PendingResult<number>[], durable) => {
          for (const r of batch) heard.set(r.owner, durable);
          if (heard.size === completions.length) resolve(heard);
        });
        for (const completion of completions) group.write({ completion, owner: completion.id });
      });
    }

    const failedWith = (id: number, lastError: string): Completion => ({ id, attempts: 1, status: "failed", lastError });

    test("results that arrive while a write is being started share one write on PGlite (embedded: a write holds the process)", async () => {
      await claimed();
      const batches: number[][] = [];
      const group = new GroupCommit<number>(db.database, new FixedClock("2026-12-01T00:00:00Z"), memoryLogger(), (batch) => {
        batches.push(batch.map((r) => r.owner));
      }, db.database.kind === "pglite");
      // As send answers do: one result, then two more in callbacks of the same turn of the event loop.
      group.write({ completion: { id: 1, attempts: 1, status: "sent" }, owner: 1 });
      queueMicrotask(() => group.write({ completion: { id: 2, attempts: 1, status: "sent" }, owner: 2 }));
      setTimeout(() => group.write({ completion: { id: 3, attempts: 1, status: "sent" }, owner: 3 }), 0);
      await waitFor(() => (batches.flat().length === 3 ? true : undefined), 10_000, "three results written");
      if (db.database.kind === "pglite") expect(batches[0]).toContain(2);
      else expect(batches[0]).toEqual([1]);
    });

    test("an error text with a NUL character is stored without it, and the batch is written", async () => {
      await claimed();
      const heard = await commit([failedWith(1, "bad\u0000gateway"), failedWith(2, "x".repeat(5000))]);
      expect([...heard.values()]).toEqual([true, true]);
      const rows = await db.database.rows<{ id: number; status: string; last_error: string }>(
        sql`select id, status, last_error from messages where id in (1, 2) order by id`);
      expect(rows[0]).toEqual({ id: 1, status: "failed", last_error: "badgateway" });
      expect(rows[1]!.last_error.length).toBe(1000);
    });

    test("a row the database refuses for good is given up alone; the rest of its batch is written", async () => {
      await claimed();
      // Row 3's result violates a rule the database enforces (as a future constraint or bug might).
      await db.database.rows(sql`
        create function refuse_three() returns trigger language plpgsql as $$
        begin if new.id = 3 and new.status <> 'sending' then
          raise exception 'refused' using errcode = '23514'; end if; return new; end $$`);
      await db.database.rows(sql`create trigger refuse_three before update on messages for each row execute function refuse_three()`);
      const logger = memoryLogger();
      const heard = await commit([1, 2, 3, 4, 5].map((id) => ({ id, attempts: 1, status: "sent" }) as Completion), logger);
      expect(Object.fromEntries(heard)).toEqual({ 1: true, 2: true, 3: false, 4: true, 5: true });
      const rows = await db.database.rows<{ id: number; status: string }>(sql`select id, status from messages order by id`);
      expect(rows.map((r) => r.status)).toEqual(["sent", "sent", "sending", "sent", "sent"]);
      expect(logger.lines.some((l) => String(l.msg).startsWith("a result was refused") && l.message_id === 3)).toBe(true);
    });
  });
}
