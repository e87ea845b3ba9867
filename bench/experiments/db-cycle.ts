/**
 * Side measurement for target 1: what the dispatcher's database work costs per message, with no
 * HTTP at all. One loop, one connection: claim a batch with `claimDue`, write every result back as
 * `sent` with `completeBatch`, until nothing is due. Prints wall time and the CPU of this process
 * and of its PostgreSQL backends, per message.
 *
 *   bun bench/experiments/db-cycle.ts --n 100000 --batch 500 [--setup-sql "drop index …"]
 */
import { sql } from "drizzle-orm";
import { claimDue } from "../../src/dispatch/claim";
import { completeBatch } from "../../src/dispatch/complete";
import { arg, check, cpuMeter, freshPostgres, main, seedClientsAndMailing, seedDueMessages, statusCounts } from "../support";

await main(async () => {
  const n = Number(arg("n", "20000"));
  const batch = Number(arg("batch", "500"));
  const fresh = await freshPostgres({ max: 1 });
  const { database } = fresh;
  try {
    const mailingId = await seedClientsAndMailing(database, n);
    await seedDueMessages(database, mailingId, n);
    const setupSql = arg("setup-sql", "");
    if (setupSql) await database.rows(sql.raw(setupSql));
    await database.rows(sql`vacuum analyze clients, mailings, messages, mailing_counts`);
    const meter = cpuMeter(null, fresh.name);
    const started = performance.now();
    let statements = 0;
    let claimMs = 0;
    let completeMs = 0;
    for (;;) {
      const now = new Date();
      let t = performance.now();
      const claimed = await claimDue(database.db, now, batch, 60);
      claimMs += performance.now() - t;
      statements++;
      if (claimed.length === 0) break;
      t = performance.now();
      await completeBatch(
        database.db,
        claimed.map((m) => ({ id: m.id, attempts: m.attempts, status: "sent" as const })),
        new Date(),
      );
      completeMs += performance.now() - t;
      statements++;
    }
    const wallMs = performance.now() - started;
    const cpu = meter.stop();
    const counts = await statusCounts(database);
    check(counts.sent === n, `all ${n} sent (got ${JSON.stringify(counts)})`);
    const perMessage = (s: number) => Math.round((s * 1e6) / n);
    const result = {
      n,
      batch,
      statements,
      wall_ms: Math.round(wallMs),
      claim_ms: Math.round(claimMs),
      complete_ms: Math.round(completeMs),
      msg_per_s: Math.round((n / wallMs) * 1000),
      cpu_us_per_msg: { process: perMessage(cpu.self), postgres: perMessage(cpu.postgres) },
    };
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await fresh.drop();
  }
});
