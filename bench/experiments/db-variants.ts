/**
 * Side measurement for target 1 (not in the suite): the database cost per message of other claim
 * designs than SPEC §6's, on the real schema, no HTTP. One connection; N due messages; each mode
 * loops until none is left, then prints msg/s and the CPU µs per message of this process and of its
 * PostgreSQL backend.
 *
 *   two     SPEC §6 as built: claim UPDATE (sending, lease), then result UPDATE — two row versions
 *   lock    one transaction per batch: SELECT … FOR UPDATE SKIP LOCKED, then one result UPDATE
 *   claims  claims in a narrow table (INSERT … ON CONFLICT), result = DELETE claim + UPDATE message
 *   hot     claim as a HOT update (needs --pre-sql that moves the lease to an unindexed column and
 *           removes status from every index, and a fillfactor; see BENCHMARKS.md)
 *
 *   bun bench/experiments/db-variants.ts --mode lock --n 100000 --batch 500 [--pre-sql …] [--setup-sql …] [--explain-every 250]
 */
import postgres from "postgres";
import { sql as dsql } from "drizzle-orm";
import { arg, cpuMeter, freshPostgres, seedClientsAndMailing, seedDueMessages, statusCounts } from "../support";
const n = Number(arg("n", "100000")), batch = Number(arg("batch", "500")), mode = arg("mode", "lock");
const fresh = await freshPostgres({ max: 1 });
console.error(`mode ${mode}, n ${n}, batch ${batch}`);
const setupSql = arg("setup-sql", "");
try {
  if (arg("pre-sql", "")) await fresh.database.rows(dsql.raw(arg("pre-sql", "")));
  const mid = await seedClientsAndMailing(fresh.database, n);
  await seedDueMessages(fresh.database, mid, n);
  if (setupSql) await fresh.database.rows(dsql.raw(setupSql));
  await fresh.database.rows(dsql`vacuum analyze clients, mailings, messages, mailing_counts`);
  const pg = postgres(fresh.url, { max: 1 });
  const meter = cpuMeter(null, fresh.name);
  const t0 = performance.now();
  let pending: any = null; let iter = 0;
  for (;;) {
    if (++iter % Number(arg("explain-every", "0") || 1e9) === 0) { const e = await pg.unsafe(`explain (analyze, buffers) select id from messages where status in ('scheduled','retrying','sending') and next_attempt_at <= now() order by next_attempt_at limit ${batch} for update skip locked`); console.log(iter, e.map((r: any) => r["QUERY PLAN"]).filter((l: string) => /Index Scan|Buffers|Execution/.test(l)).join(" | ")); }
    let got = 0;
    if (mode === "lock") {
      await pg.begin(async (tx) => {
        const rows = await tx`select id, attempts from messages where status in ('scheduled','retrying','sending') and next_attempt_at <= now() order by next_attempt_at limit ${batch} for update skip locked`;
        got = rows.length;
        if (!got) return;
        const ids = rows.map((r) => r.id);
        await tx`update messages set status='sent', attempts = attempts+1, sent_at = now(), updated_at = now() where id = any(${ids}::int[])`;
      });
    } else if (mode === "two") {
      const rows = await pg`with due as (select id from messages where status in ('scheduled','retrying','sending') and next_attempt_at <= now() order by next_attempt_at limit ${batch} for update skip locked)
        update messages m set status='sending', attempts=m.attempts+1, next_attempt_at = now() + interval '60 s', updated_at=now() from due where m.id = due.id returning m.id, m.attempts`;
      got = rows.length; if (!got) break;
      const ids = rows.map((r) => r.id), att = rows.map((r) => r.attempts);
      await pg`update messages m set status='sent', sent_at=now(), updated_at=now() from unnest(${ids}::int[], ${att}::int[]) as r(id, attempts) where m.id = r.id and m.status='sending' and m.attempts = r.attempts`;
    }
    else if (mode === "hot") {
      const rows = await pg`with due as (select id from messages where next_attempt_at <= now() and (status in ('scheduled','retrying') or (status='sending' and lease_until <= now())) order by next_attempt_at limit ${batch} for update skip locked)
        update messages m set status='sending', attempts=m.attempts+1, lease_until = now() + interval '60 s', updated_at=now() from due where m.id = due.id returning m.id, m.attempts`;
      got = rows.length;
      if (pending) { const p = pending; pending = null;
        await pg`update messages m set status='sent', sent_at=now(), next_attempt_at = null, lease_until = null, updated_at=now() from unnest(${p.ids}::int[], ${p.att}::int[]) as r(id, attempts) where m.id = r.id and m.status='sending' and m.attempts = r.attempts`; }
      if (got) pending = { ids: rows.map((r) => r.id), att: rows.map((r) => r.attempts) };
    }
    else if (mode === "claims") {
      const rows = await pg`with due as (select m.id, m.mailing_id, m.attempts from messages m where m.status in ('scheduled','retrying') and m.next_attempt_at <= now()
            and not exists (select 1 from message_claims c where c.message_id = m.id and c.lease_until > now())
            order by m.next_attempt_at limit ${batch} for update of m skip locked)
        insert into message_claims as c (message_id, mailing_id, attempts, lease_until) select id, mailing_id, attempts + 1, now() + interval '60 s' from due
        on conflict (message_id) do update set attempts = excluded.attempts, lease_until = excluded.lease_until where c.lease_until <= now()
        returning c.message_id as id, c.attempts`;
      got = rows.length;
      if (pending) { const p = pending; pending = null;
        await pg`with done as (delete from message_claims c using unnest(${p.ids}::int[], ${p.att}::int[]) as r(id, attempts) where c.message_id = r.id and c.attempts = r.attempts returning c.message_id, c.attempts)
          update messages m set status='sent', attempts = done.attempts, sent_at=now(), updated_at=now() from done where m.id = done.message_id and m.status in ('scheduled','retrying')`; }
      if (got) pending = { ids: rows.map((r) => r.id), att: rows.map((r) => r.attempts) };
    }
    if (!got) break;
  }
  const ms = performance.now() - t0; const cpu = meter.stop(); console.log(JSON.stringify(await pg`select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname = 'messages'`));
  console.log(JSON.stringify({ mode, batch, msg_s: Math.round(n / ms * 1000), proc_us: Math.round(cpu.self * 1e6 / n), pg_us: Math.round(cpu.postgres * 1e6 / n), counts: await statusCounts(fresh.database) }));
  await pg.end();
} finally { await fresh.drop(); }
process.exit(0);
