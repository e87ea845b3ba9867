/**
 * The dispatcher's hot statements keep their index plans whatever the table statistics say.
 *
 * PostgreSQL's statistics are usually taken while no message is `sending` (autovacuum's ANALYZE,
 * or the one after a large planning): the planner then expects one `sending` row. For the result
 * write that made a sequential scan of messages joined in a nested loop against the batch — every
 * `sending` row compared with every result, 140,000 comparisons for 200 results with 700 in
 * flight, 50 ms instead of 4 (bench/NOTES.md). Checked here by the scans the statement made
 * (pg_stat_xact_user_tables), on a table analyzed in that state.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { checkClaims } from "../../src/dispatch/claim";
import { completeBatch } from "../../src/dispatch/complete";
import { freshDatabase, type TestDatabase } from "../support/db";

setDefaultTimeout(60_000);

describe.skipIf(!process.env.DATABASE_URL)("[postgres] dispatch statements use the primary key with statistics taken while nothing was sending (needs DATABASE_URL)", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase("postgres");
    await t.database.rows(sql`insert into clients (phone_number, operator_code, tag, timezone)
      select '7910' || lpad(g::text, 7, '0'), '910', '', 'UTC' from generate_series(1, 8000) g`);
    await t.database.rows(sql`insert into mailings (text, start_time, end_time, starts_at, ends_at)
      values ('hi', '2020-01-01T00:00:00', '2099-01-01T00:00:00', '2020-01-01', '2099-01-01')`);
    await t.database.rows(sql`insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
      select (select min(id) from mailings), id, phone_number, 'scheduled', now(), '2099-01-01', now() from clients`);
    await t.database.rows(sql`analyze clients, mailings, messages`);
    // Then 700 are claimed, as when a dispatcher with many sends in flight writes results.
    await t.database.rows(sql`update messages set status = 'sending', attempts = 1 where id in (select id from messages order by id limit 700)`);
  });
  afterAll(() => t?.drop());

  /** Runs `work` in a transaction and returns the sequential and index scans it made of messages. */
  async function scans(work: (tx: Parameters<Parameters<TestDatabase["database"]["db"]["transaction"]>[0]>[0]) => Promise<unknown>) {
    let result = { seq: -1, idx: -1, tuples: -1 };
    // The counts can include earlier statements of the connection not yet reported: a difference.
    const count = async (tx: { execute: (q: ReturnType<typeof sql>) => Promise<unknown> }) =>
      ((await tx.execute(sql`select seq_scan::int as seq, idx_scan::int as idx, (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int as tuples from pg_stat_xact_user_tables where relname = 'messages'`)) as { seq: number; idx: number; tuples: number }[])[0]!;
    await t.database.db
      .transaction(async (tx) => {
        const before = await count(tx as never);
        await work(tx);
        const after = await count(tx as never);
        result = { seq: after.seq - before.seq, idx: after.idx - before.idx, tuples: after.tuples - before.tuples };
        tx.rollback();
      })
      .catch((error) => {
        if (!String(error).includes("Rollback")) throw error;
      });
    return result;
  }

  test("the result write (group commit) reads the batch's rows by id, not the whole table", async () => {
    const ids = (await t.database.rows<{ id: number }>(sql`select id from messages where status = 'sending' order by id limit 200`)).map((r) => r.id);
    expect(ids).toHaveLength(200);
    let written = 0;
    const made = await scans(async (tx) => {
      written = await completeBatch(tx as never, ids.map((id) => ({ id, attempts: 1, status: "sent" as const })), new Date());
    });
    expect(written).toBe(200);
    expect(made.seq).toBe(0);
    // Its own rows, not the 8,000 of the table (nor the 700 in flight, compared with each result).
    expect(made.tuples).toBeLessThanOrEqual(2 * ids.length);
  });

  test("the pre-send re-read reads the held rows by id", async () => {
    const ids = (await t.database.rows<{ id: number }>(sql`select id from messages where status = 'sending' order by id limit 400`)).map((r) => r.id);
    let read = 0;
    const made = await scans(async (tx) => {
      read = (await checkClaims(tx as never, ids.map((id) => ({ id, attempts: 1 })))).size;
    });
    expect(read).toBe(400);
    expect(made.seq).toBe(0);
    expect(made.tuples).toBeLessThanOrEqual(2 * ids.length);
  });
});
