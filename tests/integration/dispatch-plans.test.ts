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
import { type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { checkClaims, claimDue } from "../../src/dispatch/claim";
import { completeBatch } from "../../src/dispatch/complete";
import { freshDatabase, type TestDatabase } from "../support/db";

setDefaultTimeout(60_000);

/** A database of `clients` clients and `mailings` open mailings, one scheduled message per client in the last mailing. */
async function seeded(clients: number, mailings: number): Promise<TestDatabase> {
  const t = await freshDatabase("postgres");
  await t.database.rows(sql`insert into clients (phone_number, operator_code, tag, timezone)
    select '7910' || lpad(g::text, 7, '0'), '910', '', 'UTC' from generate_series(1, ${clients}::int) g`);
  await t.database.rows(sql`insert into mailings (text, start_time, end_time, starts_at, ends_at)
    select 'hi', '2020-01-01T00:00:00', '2099-01-01T00:00:00', '2020-01-01', '2099-01-01' from generate_series(1, ${mailings}::int)`);
  await t.database.rows(sql`insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
    select (select max(id) from mailings), id, phone_number, 'scheduled', now(), '2099-01-01', now() from clients`);
  return t;
}

describe.skipIf(!process.env.DATABASE_URL)("[postgres] dispatch statements use the primary key with statistics taken while nothing was sending (needs DATABASE_URL)", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await seeded(8000, 1);
    await t.database.rows(sql`analyze clients, mailings, messages`);
    // Then 700 are claimed, as when a dispatcher with many sends in flight writes results.
    await t.database.rows(sql`update messages set status = 'sending', attempts = 1 where id in (select id from messages order by id limit 700)`);
  });
  afterAll(() => t?.drop());

  /** Runs `work` in a transaction and returns the sequential and index scans it made of messages. */
  async function scans(work: (tx: Parameters<Parameters<TestDatabase["database"]["db"]["transaction"]>[0]>[0]) => Promise<unknown>) {
    let result = { seq: -1, idx: -1, tuples: -1, clientTuples: -1 };
    // The counts can include earlier statements of the connection not yet reported: a difference.
    const count = async (tx: { execute: (q: ReturnType<typeof sql>) => Promise<unknown> }) =>
      ((await tx.execute(sql`select seq_scan::int as seq, idx_scan::int as idx, (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int as tuples,
          (select (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int from pg_stat_xact_user_tables where relname = 'clients') as client_tuples
          from pg_stat_xact_user_tables where relname = 'messages'`)) as { seq: number; idx: number; tuples: number; client_tuples: number }[])[0]!;
    await t.database.db
      .transaction(async (tx) => {
        const before = await count(tx as never);
        await work(tx);
        const after = await count(tx as never);
        result = { seq: after.seq - before.seq, idx: after.idx - before.idx, tuples: after.tuples - before.tuples, clientTuples: after.client_tuples - before.client_tuples };
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

  /**
   * The one statement `run` sends, planned as the prepared statement's `mode` plan — generic: the
   * one a long-running dispatcher ends up with (estimates of ten ids, one `sending` row); custom:
   * planned for the values at hand, as the first runs are — and run with EXPLAIN ANALYZE: the rows
   * its joins threw away, whether it scanned messages whole, and the rows it wrote (an UPDATE's
   * ModifyTable node; -1 for a read), so that a plan that matched nothing cannot pass.
   */
  async function plannedAs(mode: "generic" | "custom", run: (ex: never) => Promise<unknown>) {
    const captured: SQL[] = [];
    await run({ execute: async (q: SQL) => (captured.push(q), []) } as never);
    expect(captured).toHaveLength(1);
    const { sql: text, params } = new PgDialect().sqlToQuery(captured[0]!);
    let plan: unknown = null;
    await t.database.db
      .transaction(async (tx) => {
        await tx.execute(sql.raw(`set local plan_cache_mode = force_${mode}_plan`));
        await tx.execute(sql.raw(`prepare plan_probe as ${text}`));
        const args = params.map((p) => (p === null ? "null" : `'${String(p).replaceAll("'", "''")}'`)).join(", ");
        const [row] = (await tx.execute(sql.raw(`explain (analyze, format json) execute plan_probe(${args})`))) as unknown as { "QUERY PLAN": unknown }[];
        plan = row!["QUERY PLAN"];
        await tx.execute(sql`deallocate plan_probe`);
        tx.rollback();
      })
      .catch((error) => {
        if (!String(error).includes("Rollback")) throw error;
      });
    let removed = 0;
    let wholeScans = 0;
    let written = -1;
    const walk = (node: Record<string, unknown>) => {
      removed += Number(node["Rows Removed by Join Filter"] ?? 0);
      if (node["Node Type"] === "ModifyTable") written = Number(node["Actual Rows"]);
      if (node["Node Type"] === "Seq Scan" && node["Relation Name"] === "messages") wholeScans++;
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    const root = ((typeof plan === "string" ? JSON.parse(plan) : plan) as { Plan: Record<string, unknown> }[])[0]!.Plan;
    walk(root);
    return { removed, wholeScans, written };
  }
  const genericPlan = (run: (ex: never) => Promise<unknown>) => plannedAs("generic", run);

  test("the pre-send re-read under a generic plan: no row compared with every id", async () => {
    const ids = (await t.database.rows<{ id: number }>(sql`select id from messages where status = 'sending' order by id limit 500`)).map((r) => r.id);
    const made = await genericPlan((ex) => checkClaims(ex, ids.map((id) => ({ id, attempts: 1 }))));
    expect(made.wholeScans).toBe(0);
    expect(made.removed).toBeLessThanOrEqual(ids.length);
  });

  test("the result write under a generic plan: no row compared with every result", async () => {
    const ids = (await t.database.rows<{ id: number }>(sql`select id from messages where status = 'sending' order by id limit 500`)).map((r) => r.id);
    const made = await genericPlan((ex) => completeBatch(ex, ids.map((id) => ({ id, attempts: 1, status: "sent" as const })), new Date()));
    expect(made.written).toBe(500);
    expect(made.wholeScans).toBe(0);
    expect(made.removed).toBeLessThanOrEqual(ids.length);
  });

  test("the result write of every row in flight at once, custom plan: no row compared with every result", async () => {
    // With one `sending` row expected, a nested loop cost the planner the same as a hash join; when
    // it won, each held row scanned the whole batch again: 490,000 comparisons here,
    // 3.2 million (579 ms) for 1,783 results in the benchmark (complete.ts).
    const ids = (await t.database.rows<{ id: number }>(sql`select id from messages where status = 'sending' order by id`)).map((r) => r.id);
    expect(ids).toHaveLength(700);
    const made = await plannedAs("custom", (ex) => completeBatch(ex, ids.map((id) => ({ id, attempts: 1, status: "sent" as const })), new Date()));
    expect(made.written).toBe(700);
    expect(made.wholeScans).toBe(0);
    expect(made.removed).toBeLessThanOrEqual(ids.length);
  });

  test("the claim reads its rows, their clients and their mailing by key, not the whole tables", async () => {
    let claimed = 0;
    const made = await scans(async (tx) => {
      claimed = (await claimDue(tx as never, new Date(Date.now() + 60_000), 200, 60)).length;
    });
    expect(claimed).toBe(200);
    expect(made.seq).toBe(0);
    // the due index, then the rows by key; not the 8,000 rows of messages and of clients
    expect(made.tuples).toBeLessThanOrEqual(3 * 200);
    expect(made.clientTuples).toBeLessThanOrEqual(2 * 200);
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

describe.skipIf(!process.env.DATABASE_URL)("[postgres] the pre-send re-read with twenty mailings, all vacuumed (needs DATABASE_URL)", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await seeded(50000, 20);
    await t.database.rows(sql`vacuum analyze clients, mailings, messages`);
    await t.database.rows(sql`update messages set status = 'sending', attempts = 1 where id in (select id from messages order by id limit 360)`);
  });
  afterAll(() => t?.drop());

  test("builds no hash table per held row (generic and custom plans)", async () => {
    // As plain left joins, the mailing's join went inside the per-id loop as a hash join: a hash
    // table built, and `mailings` scanned, once per held row (a third of the read's CPU).
    const ids = (await t.database.rows<{ id: number }>(sql`select id from messages where status = 'sending' order by id`)).map((r) => r.id);
    let captured: SQL | null = null;
    await checkClaims({ execute: async (q: SQL) => ((captured = q), []) } as never, ids.map((id) => ({ id, attempts: 1 })));
    const { sql: text, params } = new PgDialect().sqlToQuery(captured!);
    const args = params.map((p) => `'${String(p).replaceAll("'", "''")}'`).join(", ");
    for (const mode of ["generic", "custom"]) {
      let hashLoops = -1;
      let rows = -1;
      await t.database.db
        .transaction(async (tx) => {
          await tx.execute(sql.raw(`set local plan_cache_mode = force_${mode}_plan`));
          await tx.execute(sql.raw(`prepare reread_probe as ${text}`));
          const [row] = (await tx.execute(sql.raw(`explain (analyze, format json) execute reread_probe(${args})`))) as unknown as { "QUERY PLAN": unknown }[];
          const plan = row!["QUERY PLAN"];
          const root = ((typeof plan === "string" ? JSON.parse(plan) : plan) as { Plan: Record<string, unknown> }[])[0]!.Plan;
          rows = Number(root["Actual Rows"]);
          hashLoops = 0;
          const walk = (node: Record<string, unknown>) => {
            if (node["Node Type"] === "Hash") hashLoops = Math.max(hashLoops, Number(node["Actual Loops"] ?? 0));
            for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
          };
          walk(root);
          await tx.execute(sql`deallocate reread_probe`);
          tx.rollback();
        })
        .catch((error) => {
          if (!String(error).includes("Rollback")) throw error;
        });
      expect({ mode, rows }).toEqual({ mode, rows: 360 });
      expect({ mode, hashLoops }).toEqual({ mode, hashLoops: expect.any(Number) });
      expect(hashLoops).toBeLessThanOrEqual(1);
    }
  });
});
