/**
 * Side measurement for issue 16 target 1 (not in the suite): PostgreSQL CPU per message of each
 * database step of a dispatch, as the service runs them, with no HTTP. One connection, so one
 * backend, whose on-CPU time (/proc/PID/schedstat, ns) is read around every statement:
 *
 *   plan      MailingService.create of a mailing to N clients (the planning INSERT … SELECT)
 *   claim     claimDue, --claim rows a statement (the service's loopback runs: ~360)
 *   check     checkClaims of every claimed row once (the pre-send re-read)
 *   complete  completeBatch as `sent`, --complete rows a statement (the service's loopback runs: ~85)
 *
 *   bun bench/experiments/db-phases.ts --n 50000 [--claim 360] [--complete 85] [--setup-sql "…"] [--root DIR]
 *
 * `--setup-sql` runs after the migrations (before the planning): a schema variant to compare.
 * `--root DIR`: the src/ of another checkout (its migrations and statements), for an A/B.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { sql } from "drizzle-orm";
import { arg, check, freshPostgres, main, seedClients, statusCounts } from "../support";

const root = resolve(arg("root", `${import.meta.dir}/../..`));
const { claimDue, checkClaims } = (await import(`${root}/src/dispatch/claim.ts`)) as typeof import("../../src/dispatch/claim");
const { completeBatch } = (await import(`${root}/src/dispatch/complete.ts`)) as typeof import("../../src/dispatch/complete");
const { MailingService } = (await import(`${root}/src/mailings/service.ts`)) as typeof import("../../src/mailings/service");
const { systemClock } = (await import(`${root}/src/clock.ts`)) as typeof import("../../src/clock");
const { openPostgres } = (await import(`${root}/src/db/client.ts`)) as typeof import("../../src/db/client");

await main(async () => {
  const n = Number(arg("n", "50000"));
  const claimRows = Number(arg("claim", "360"));
  const completeRows = Number(arg("complete", "85"));
  const fresh = await freshPostgres({ migrate: false, max: 1 });
  const database = openPostgres(fresh.url, { max: 1 });
  try {
    await database.migrate();
    const setupSql = arg("setup-sql", "");
    if (setupSql) await database.rows(sql.raw(setupSql));
    await seedClients(database, n);
    await database.rows(sql`vacuum analyze clients, mailings, messages, mailing_counts`);
    const [{ pid }] = (await database.rows<{ pid: number }>(sql`select pg_backend_pid() as pid`)) as [{ pid: number }];
    // `--pid-file F`: the backend's pid is written there (for `perf record -p`), then a second's pause.
    if (arg("pid-file", "")) {
      await Bun.write(arg("pid-file", ""), String(pid));
      await Bun.sleep(1000);
    }
    const cpuNs = () => Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
    const spent = { plan: 0, claim: 0, check: 0, complete: 0 };
    const timed = async <T>(phase: keyof typeof spent, work: () => Promise<T>): Promise<T> => {
      const before = cpuNs();
      const result = await work();
      spent[phase] += cpuNs() - before;
      return result;
    };
    const service = new MailingService(database, systemClock, { wake() {}, mailingChanged() {}, clientChanged() {} });
    await timed("plan", () => service.create({ text: "Bench message", start_time: "2020-01-01T00:00:00", end_time: "2099-12-31T23:59:59" }));
    let statements = 0;
    for (;;) {
      const claimed = await timed("claim", () => claimDue(database.db, new Date(), claimRows, 60));
      statements++;
      if (claimed.length === 0) break;
      const checks = await timed("check", () => checkClaims(database.db, claimed));
      check(checks.size === claimed.length, "every claimed row read back");
      for (let i = 0; i < claimed.length; i += completeRows) {
        const part = claimed.slice(i, i + completeRows);
        await timed("complete", () => completeBatch(database.db, part.map((m) => ({ id: m.id, attempts: m.attempts, status: "sent" as const })), new Date()));
        statements++;
      }
    }
    const counts = await statusCounts(database);
    check(counts.sent === n, `all ${n} sent (got ${JSON.stringify(counts)})`);
    const [stats] = (await database.rows<{ sent: number }>(sql`select coalesce(sum(n), 0)::int as sent from mailing_counts_live where status = 'sent'`)) as [{ sent: number }];
    // `--no-count-check`: for variants without the counter triggers (what they cost at most).
    if (!process.argv.includes("--no-count-check")) check(stats.sent === n, `mailing_counts_live says ${stats.sent} sent`);
    // How PostgreSQL planned the prepared statements of this connection: a statement that stays on
    // custom plans is planned anew at every execution.
    const prepared = await database.rows<{ statement: string; generic_plans: number; custom_plans: number }>(
      sql`select left(regexp_replace(statement, '[[:space:]]+', ' ', 'g'), 50) as statement, generic_plans::int, custom_plans::int from pg_prepared_statements where generic_plans + custom_plans > 20`,
    );
    const us = (ns: number) => Math.round((ns / 1e3 / n) * 10) / 10;
    const result = {
      root,
      n,
      claim: claimRows,
      complete: completeRows,
      statements,
      plans: prepared.map((p) => `${p.statement}…: ${p.generic_plans} generic, ${p.custom_plans} custom`),
      pg_us_per_msg: { plan: us(spent.plan), claim: us(spent.claim), check: us(spent.check), complete: us(spent.complete), total: us(spent.plan + spent.claim + spent.check + spent.complete) },
    };
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await database.close().catch(() => {});
    await fresh.drop();
  }
});
