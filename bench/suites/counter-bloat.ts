/**
 * Issue 16, target 5 — statistics without autovacuum's help: a million sends must leave the
 * statistics counters at most 2× their live size, with autovacuum OFF (this machine's PostgreSQL;
 * the worst case: "autovacuum is slow").
 *
 * For each variant, on a fresh database (autovacuum also switched off per table): N clients, M open
 * mailings, N due messages interleaved over them; the service's Dispatcher (in this process, an
 * instant in-process gateway, so the database is the bottleneck; claim batch 500, concurrency 200)
 * sends them all, while the service's counter fold runs every --fold-ms (as src/main.ts starts it).
 * Measured: sends/s; the counters' footprint — heap + indexes of `mailing_counts` plus
 * `mailing_count_deltas` — sampled every 250 ms (peak) and at the end; dead tuples (pgstattuple);
 * and the "live size": heap + index of a freshly written copy of the `mailing_counts` rows after a
 * last fold. Ratio = footprint / live size; target ≤ 2. Counters are checked exact against messages.
 *
 * Variants (interleaved, --rounds times each):
 *   deltas   the schema as migrated (drizzle/0007): triggers append deltas, the fold adds them up
 *            and truncates them; mailing_counts at fillfactor 50
 *   upsert   the triggers of 0001–0006 put back (each statement upserts mailing_counts rows, sharded
 *            by backend), fillfactor 100, no fold: the design before 0007
 *   upsert-ff50, deltas-ff100  the other fillfactor (experiments, not run by default)
 *
 *   bun bench/suites/counter-bloat.ts [--quick] [--n 200000] [--mailings 20] [--rounds 1]
 *     [--variants deltas,upsert] [--fold-ms 5000] [--concurrency 200] [--claim-batch 500]
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { systemClock } from "../../src/clock";
import { Dispatcher } from "../../src/dispatch/dispatcher";
import type { Gateway } from "../../src/gateway/gateway";
import { createLogger } from "../../src/ops/logger";
import { foldCounters, startCounterFold } from "../../src/stats/fold";
import { arg, check, flag, freshPostgres, loadAverage, printTable, round2, standalone, verdict, type Row, type SuiteOptions } from "../support";

/** message_counts_apply() as drizzle/0001 made it (the design before 0007), for the `upsert` variants. */
const upsertTriggerFunction = `
CREATE OR REPLACE FUNCTION message_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO mailing_counts AS c (mailing_id, status, shard, n)
      SELECT mailing_id, status, (pg_backend_pid() % 4)::smallint, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (mailing_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO mailing_counts AS c (mailing_id, status, shard, n)
      SELECT mailing_id, status, (pg_backend_pid() % 4)::smallint, sum(d) FROM (
        SELECT mailing_id, status, 1 AS d FROM new_rows
        UNION ALL
        SELECT mailing_id, status, -1 AS d FROM old_rows
      ) changes
      GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
      ON CONFLICT (mailing_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
  ELSE
    INSERT INTO mailing_counts AS c (mailing_id, status, shard, n)
      SELECT o.mailing_id, o.status, (pg_backend_pid() % 4)::smallint, -count(*) FROM old_rows o
      WHERE EXISTS (SELECT 1 FROM mailings m WHERE m.id = o.mailing_id)
      GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (mailing_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
  END IF;
  RETURN NULL;
END
$$`;

type Variant = { name: string; setup: string[]; fold: boolean };
const variants: Record<string, Variant> = {
  deltas: { name: "deltas", setup: [], fold: true },
  upsert: { name: "upsert", setup: [upsertTriggerFunction, "alter table mailing_counts set (fillfactor = 100)"], fold: false },
  "upsert-ff50": { name: "upsert-ff50", setup: [upsertTriggerFunction], fold: false },
  "deltas-ff100": { name: "deltas-ff100", setup: ["alter table mailing_counts set (fillfactor = 100)"], fold: true },
};

type Outcome = {
  variant: string;
  n: number;
  mailings: number;
  ms: number;
  perSecond: number;
  /** heap + indexes of mailing_counts and mailing_count_deltas, KB */
  beforeKb: number;
  peakKb: number;
  endKb: number;
  /** of which mailing_count_deltas at the end */
  endDeltasKb: number;
  /** mailing_counts alone (heap + index) at the end */
  countsEndKb: number;
  /** dead tuples in mailing_counts at the end (pgstattuple) */
  deadTuples: number;
  liveRows: number;
  /** heap + index of a fresh copy of mailing_counts' rows (after a last fold) */
  liveKb: number;
  peakRatio: number;
  endRatio: number;
  /** growth of pg_class (+ its indexes): each TRUNCATE of a fold writes a new pg_class row version */
  catalogGrowthKb: number;
  loadBefore: number;
  loadAfter: number;
};

/** Accepts every send at once: the database is what is measured. */
const instantGateway: Gateway = {
  name: "instant",
  async send(message) {
    return { outcome: "sent", providerId: `m${message.id}` };
  },
};

async function footprintKb(raw: postgres.Sql): Promise<{ total: number; deltas: number }> {
  const [row] = await raw.unsafe<{ counts: number; deltas: number }[]>(`
    select (pg_relation_size('mailing_counts') + pg_indexes_size('mailing_counts'))::float8 as counts,
           (pg_relation_size('mailing_count_deltas') + pg_indexes_size('mailing_count_deltas'))::float8 as deltas`);
  return { total: (row!.counts + row!.deltas) / 1024, deltas: row!.deltas / 1024 };
}

async function catalogKb(raw: postgres.Sql): Promise<number> {
  const [row] = await raw.unsafe<{ kb: number }[]>(`select (pg_relation_size('pg_class') + pg_indexes_size('pg_class'))::float8 / 1024 as kb`);
  return row!.kb;
}

async function runOne(variant: Variant, n: number, mailings: number, options: { concurrency: number; claimBatch: number; foldMs: number }): Promise<Outcome> {
  const loadBefore = loadAverage();
  const db = await freshPostgres({ max: 10 });
  const raw = db.sql;
  try {
    // Exact dead tuples need pgstattuple (contrib); without it the figure is left out.
    const pgstattuple = await raw.unsafe(`create extension if not exists pgstattuple`).then(
      () => true,
      () => false,
    );
    for (const table of ["mailing_counts", "mailing_count_deltas", "messages", "clients"]) {
      await raw.unsafe(`alter table ${table} set (autovacuum_enabled = false)`);
    }
    for (const statement of variant.setup) await raw.unsafe(statement);
    await raw.unsafe(`
      insert into clients (phone_number, operator_code, tag, timezone)
      select '7' || lpad(g::text, 10, '0'), '900', 'bench', 'UTC' from generate_series(1, ${n}) g`);
    await raw.unsafe(`
      insert into mailings (text, start_time, end_time, starts_at, ends_at)
      select 'Bench ' || g, '2020-01-01T00:00:00', '2099-12-31T23:59:59', '2019-12-31T10:00:00Z', '2100-01-01T11:59:59Z'
      from generate_series(1, ${mailings}) g`);
    // Messages of all mailings interleaved in due order: every claim and commit moves counts of each.
    await raw.unsafe(`
      insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
      select 1 + (c.id % ${mailings}), c.id, c.phone_number, 'scheduled',
        now() - interval '1 hour' + c.id * interval '1 millisecond', '2100-01-01T00:00:00Z',
        now() - interval '1 hour' + c.id * interval '1 millisecond'
      from clients c order by c.id`);
    if (variant.fold) await foldCounters(db.database);
    await raw.unsafe(`vacuum analyze clients, mailings, messages, mailing_counts, mailing_count_deltas`);
    const before = await footprintKb(raw);
    const catalogBefore = await catalogKb(raw);

    const logger = createLogger("warn");
    const dispatcher = new Dispatcher(db.database, instantGateway, systemClock, logger, {
      concurrency: options.concurrency,
      claimBatch: options.claimBatch,
      leaseSeconds: 60,
      sendTimeoutMs: 10_000,
      retryDelaySeconds: 300,
      tick: null,
    });
    const stopFold = variant.fold ? startCounterFold(db.database, logger, options.foldMs) : () => {};
    let peak = before.total;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, (await footprintKb(raw)).total);
        await Bun.sleep(250);
      }
    })();
    const started = performance.now();
    await dispatcher.drain();
    const ms = performance.now() - started;
    sampling = false;
    await sampler;
    stopFold();
    await dispatcher.stop(1000);

    const [exact] = await raw.unsafe<{ sent: number; kept: number; differing: number }[]>(`
      with counted as (select mailing_id, status, count(*) as n from messages group by 1, 2),
           kept as (select mailing_id, status, sum(n) as n from mailing_counts_live group by 1, 2 having sum(n) <> 0)
      select (select count(*) from messages where status = 'sent')::int as sent,
             (select coalesce(sum(n), 0) from kept where status = 'sent')::int as kept,
             (select count(*) from counted full join kept using (mailing_id, status) where counted.n is distinct from kept.n)::int as differing`);
    check(exact!.sent === n, `${exact!.sent} of ${n} messages sent`);
    check(exact!.kept === n && exact!.differing === 0, `counters exact: ${JSON.stringify(exact)}`);
    const end = await footprintKb(raw);
    const catalogGrowthKb = (await catalogKb(raw)) - catalogBefore;
    peak = Math.max(peak, end.total);
    const [dead] = pgstattuple
      ? await raw.unsafe<{ dead: number }[]>(`select dead_tuple_count::float8 as dead from pgstattuple('mailing_counts')`)
      : [{ dead: Number.NaN }];
    if (variant.fold) check((await foldCounters(db.database)) >= 0, "the last fold ran");
    // The live size: the same rows written afresh (fillfactor 100, no dead versions).
    await raw.unsafe(`create table compact_copy (like mailing_counts including all)`);
    await raw.unsafe(`insert into compact_copy select * from mailing_counts`);
    const [compact] = await raw.unsafe<{ kb: number; rows: number }[]>(
      `select (pg_relation_size('compact_copy') + pg_indexes_size('compact_copy'))::float8 / 1024 as kb, (select count(*) from compact_copy)::int as rows`,
    );
    return {
      variant: variant.name,
      n,
      mailings,
      ms: Math.round(ms),
      perSecond: Math.round((n / ms) * 1000),
      beforeKb: before.total,
      peakKb: peak,
      endKb: end.total,
      endDeltasKb: end.deltas,
      countsEndKb: end.total - end.deltas,
      deadTuples: dead!.dead,
      liveRows: compact!.rows,
      liveKb: compact!.kb,
      peakRatio: round2(peak / compact!.kb),
      endRatio: round2(end.total / compact!.kb),
      catalogGrowthKb,
      loadBefore,
      loadAfter: loadAverage(),
    };
  } finally {
    await db.drop();
  }
}

export async function run(options: SuiteOptions): Promise<{ ok: boolean; results: Outcome[] }> {
  const argv = options.argv;
  const n = options.quick ? 2_000 : flag(argv, "n", 200_000);
  const mailings = options.quick ? 2 : flag(argv, "mailings", 20);
  const rounds = options.quick ? 1 : flag(argv, "rounds", 1);
  const foldMs = options.quick ? 200 : flag(argv, "fold-ms", 1000); // as src/main.ts
  const concurrency = flag(argv, "concurrency", 200);
  const claimBatch = flag(argv, "claim-batch", 500);
  const chosen = arg("variants", "deltas,upsert", argv)
    .split(",")
    .map((name) => {
      const found = variants[name];
      if (!found) throw new Error(`unknown variant ${name} (${Object.keys(variants).join(", ")})`);
      return found;
    });
  console.log(`counter-bloat: n=${n} mailings=${mailings} rounds=${rounds} fold every ${foldMs} ms, concurrency ${concurrency}, claim batch ${claimBatch}`);
  const results: Outcome[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const variant of chosen) {
      const o = await runOne(variant, n, mailings, { concurrency, claimBatch, foldMs });
      results.push(o);
      console.log(`${o.variant} round ${round + 1}: ${JSON.stringify(o)}`);
    }
  }
  const rows: Row[] = [];
  for (const o of results) {
    const per1M = ((o.endKb - o.beforeKb) * 1_000_000) / o.n;
    rows.push(
      { figure: `${o.variant}: sends/s (load ${o.loadBefore}→${o.loadAfter})`, value: o.perSecond },
      { figure: `${o.variant}: counters KB before / peak / end (deltas at end)`, value: `${Math.round(o.beforeKb)} / ${Math.round(o.peakKb)} / ${Math.round(o.endKb)} (${Math.round(o.endDeltasKb)})` },
      { figure: `${o.variant}: live size KB (${o.liveRows} rows), dead tuples at end`, value: `${Math.round(o.liveKb)}, ${o.deadTuples}` },
      {
        figure: `${o.variant}: mailing_counts at the end / live size`,
        value: round2(o.countsEndKb / o.liveKb),
        target: "≤ 2",
        verdict: verdict(options.quick, o.countsEndKb / o.liveKb <= 2),
      },
      { figure: `${o.variant}: counters incl. unfolded deltas, peak / end, to live size`, value: `${o.peakRatio} / ${o.endRatio}` },
      { figure: `${o.variant}: growth per 1M sends (KB, linear)`, value: Math.round(per1M) },
      { figure: `${o.variant}: pg_class growth KB (fold TRUNCATEs)`, value: Math.round(o.catalogGrowthKb) },
    );
  }
  printTable(`counter bloat, autovacuum off: ${n} sends over ${mailings} mailings`, rows);
  return { ok: true, results };
}

if (import.meta.main) await standalone(run);
