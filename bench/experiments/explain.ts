/**
 * Profiling aid for target 1: EXPLAIN (ANALYZE, BUFFERS) of the dispatcher's own statements, taken
 * from src/dispatch (claim.ts, complete.ts) by handing them an executor that only records the SQL,
 * so the plans shown are those of the code as it is now. Each statement runs inside a transaction
 * that is rolled back, on a fresh database with N due messages.
 *
 *   bun bench/experiments/explain.ts --n 200000 --claim-batch 500 [--sent 100000]
 *
 * `--sent K` first marks K of the messages sent (as midway through a run), so the plans see the
 * dead index entries and the counter rows a long run leaves behind.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Executor } from "../../src/db/client";
import { claimDue } from "../../src/dispatch/claim";
import { type Completion, expireOverdue, resultStatement } from "../../src/dispatch/complete";
import { arg, freshPostgres, main, seedClientsAndMailing, seedDueMessages } from "../support";

class Rollback extends Error {}

/** Runs a src/dispatch function against a recorder and returns the statement it would have run. */
async function captured(run: (ex: Executor) => Promise<unknown>): Promise<SQL> {
  let query: SQL | null = null;
  const recorder = { execute: async (q: SQL) => ((query = q), []) } as unknown as Executor;
  await run(recorder).catch(() => {});
  if (!query) throw new Error("no statement captured");
  return query;
}

await main(async () => {
  const n = Number(arg("n", "200000"));
  const claimBatch = Number(arg("claim-batch", "500"));
  const sent = Number(arg("sent", "0"));
  const fresh = await freshPostgres();
  const { database } = fresh;
  const plans: Record<string, string> = {};
  try {
    const mailingId = await seedClientsAndMailing(database, n);
    await seedDueMessages(database, mailingId, n);
    if (sent > 0) {
      await database.rows(sql`update messages set status = 'sent', sent_at = now(), attempts = 1 where id <= ${sent}::int`);
    }
    await database.rows(sql`vacuum analyze clients, mailings, messages, mailing_counts`);
    const now = new Date();

    const explain = async (label: string, query: SQL, before: SQL[] = []) => {
      await database.db
        .transaction(async (tx) => {
          for (const statement of before) await tx.execute(statement);
          const rows = (await tx.execute(sql`explain (analyze, buffers) ${query}`)) as unknown as { "QUERY PLAN": string }[];
          plans[label] = rows.map((r) => r["QUERY PLAN"]).join("\n");
          throw new Rollback();
        })
        .catch((error) => {
          if (!(error instanceof Rollback)) throw error;
        });
    };

    await explain("expireOverdue", await captured((ex) => expireOverdue(ex, now)));
    await explain("claimDue", await captured((ex) => claimDue(ex, now, claimBatch, 60)));
    // A group commit of `claimBatch` results for rows claimed (inside the same rolled-back transaction).
    const firstId = sent + 1;
    const completions: Completion[] = Array.from({ length: claimBatch }, (_, i) => ({ id: firstId + i, attempts: 1, status: "sent" }));
    await explain(
      "completeBatch",
      resultStatement(completions, now),
      [sql`update messages set status = 'sending', attempts = 1 where id between ${firstId}::int and ${firstId + claimBatch - 1}::int`],
    );
    for (const [label, plan] of Object.entries(plans)) console.log(`\n=== ${label} (n=${n}, sent=${sent}, batch=${claimBatch})\n${plan}`);
    return { n, sent, claimBatch, plans };
  } finally {
    await fresh.drop();
  }
});
