/**
 * Issue 4, target 4 — statistics on big tables: 10,000,000 messages over 1,000 mailings (10,000
 * clients × 1,000 mailings; quick: 2,000 × 10), generated set-based in SQL through the messages
 * table, so the statement triggers of drizzle/0001_message_counters.sql keep `mailing_counts` right.
 * Then, against a spawned service (WORKER=1, PROVIDER_URL = the fake gateway as its own process)
 * that is busy sending the due messages: `GET /api/v1/stats` p95 ≤ 50 ms and
 * `GET /api/v1/stats/{id}` p95 ≤ 20 ms, over 200 sequential requests each (after a warm-up).
 *
 * The data: half the mailings are over (sent / failed / expired / a few cancelled); the others are
 * running (mostly sent, some failed, expired, retrying later, cancelled, scheduled later); the last
 * ones (5 %, 50 in the full run) are entirely due now, which keeps the dispatcher sending throughout.
 * Loaded by bench/support/fill.ts (secondary indexes of `messages` dropped meanwhile, rebuilt, then
 * VACUUM ANALYZE).
 *
 * Each series of requests stops after --budget-seconds (120) even if not all were made; the table
 * gives the number measured.
 *
 *   bun bench/suites/stats.ts [--quick] [--clients 10000] [--mailings 1000] [--requests 200] [--budget-seconds 120] [--keep-db]
 */
import {
  bulkLoad,
  check,
  fillClients,
  fillMailingsAndMessages,
  flag,
  freshPostgres,
  loadAverage,
  one,
  percentile,
  printTable,
  round1,
  round2,
  rssMonitor,
  standalone,
  startGateway,
  startService,
  stopService,
  timedRequest,
  verdict,
  type GatewayProcess,
  type SuiteOptions,
  type Worker,
} from "../support";

const counted = ["scheduled", "sending", "sent", "retrying", "failed", "expired"] as const;

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  const clients = options.quick ? 2_000 : flag(argv, "clients", 10_000);
  const mailings = options.quick ? 10 : flag(argv, "mailings", 1_000);
  const requests = options.quick ? 20 : flag(argv, "requests", 200);
  const budgetS = flag(argv, "budget-seconds", 120);
  const keepDb = !options.quick && argv.includes("--keep-db"); // for EXPLAIN afterwards; drop it by hand
  const dueMailings = options.quick ? 1 : Math.max(1, Math.round(mailings * 0.05));
  const load = loadAverage();
  const db = await freshPostgres({ max: 4 });
  let service: Worker | null = null;
  let gateway: GatewayProcess | null = null;
  try {
    // ---- data ---------------------------------------------------------------------------------
    const genStarted = performance.now();
    const { loadS, indexS } = await bulkLoad(db, async () => {
      await fillClients(db, clients);
      await fillMailingsAndMessages(db, { clients, mailings, dueMailings });
    });
    const genS = (performance.now() - genStarted) / 1000;

    // ---- counters agree with count(*) -----------------------------------------------------------
    const { messages_total, counted_total } = await one<{ messages_total: number; counted_total: number }>(db, `
      select (select count(*) from messages)::int as messages_total,
             (select count(*) from messages where status <> 'cancelled')::int as counted_total`);
    check(messages_total === clients * mailings, `expected ${clients * mailings} messages, found ${messages_total}`);
    const { counter_total } = await one<{ counter_total: number }>(db,
      `select coalesce(sum(n), 0)::int as counter_total from mailing_counts where status <> 'cancelled'`,
    );
    check(counter_total === counted_total, `mailing_counts sum ${counter_total} ≠ count(*) ${counted_total}`);
    const probeId = Math.min(3, mailings); // a running mailing with every status
    const byCount = await db.sql.unsafe<{ status: string; n: number }[]>(
      `select status, count(*)::int as n from messages where mailing_id = $1 group by status`,
      [probeId],
    );
    const byCounter = await db.sql.unsafe<{ status: string; n: number }[]>(
      `select status, sum(n)::int as n from mailing_counts where mailing_id = $1 group by status having sum(n) <> 0`,
      [probeId],
    );
    const asMap = (rows: { status: string; n: number }[]) => JSON.stringify(Object.fromEntries(rows.map((r) => [r.status, r.n]).sort()));
    check(asMap(byCount) === asMap(byCounter), `mailing ${probeId}: count(*) ${asMap(byCount)} ≠ counters ${asMap(byCounter)}`);
    const { due } = await one<{ due: number }>(db,
      `select count(*)::int as due from messages where status in ('scheduled', 'retrying') and next_attempt_at <= now()`,
    );
    check(due === dueMailings * clients, `expected ${dueMailings * clients} due messages, found ${due}`);
    const { table_mb } = await one<{ table_mb: number }>(db,
      `select round(pg_total_relation_size('messages') / 1048576.0)::int as table_mb`,
    );

    // ---- the service, sending ----------------------------------------------------------------------
    gateway = await startGateway(0);
    service = await startService({ databaseUrl: db.url, worker: true, providerUrl: gateway.url });
    const rss = rssMonitor(service.pid, 100);
    const base = service.url;
    // Wait until the dispatcher is really sending.
    for (let i = 0; i < 100 && (await gateway.received()).total === 0; i++) await Bun.sleep(50);
    check((await gateway.received()).total > 0, "the dispatcher sent nothing within 5 s");

    const statsOnce = async () => {
      const r = await timedRequest(base, "GET", "/api/v1/stats");
      check(r.status === 200, `GET /api/v1/stats answered ${r.status}`);
      return r;
    };
    const ids = Array.from({ length: requests }, (_, i) => 1 + ((i * 7919) % mailings));
    const oneOnce = async (id: number) => {
      const r = await timedRequest(base, "GET", `/api/v1/stats/${id}`);
      check(r.status === 200, `GET /api/v1/stats/${id} answered ${r.status}`);
      return r;
    };

    // Warm-up (connections, JIT), then the measured runs.
    for (let i = 0; i < 10; i++) {
      await statsOnce();
      await oneOnce(ids[i % ids.length]!);
    }
    const first = await statsOnce();
    check(first.body.mailings === mailings && first.body.by_mailing.length === mailings, `GET /stats lists ${first.body.mailings} mailings, expected ${mailings}`);
    for (const s of counted) check(typeof first.body.messages[s] === "number", `GET /stats lacks messages.${s}`);
    const overallTotal = counted.reduce((sum, s) => sum + first.body.messages[s], 0);
    check(overallTotal === counted_total, `GET /stats counts ${overallTotal} messages, count(*) says ${counted_total}`);
    const probe = await oneOnce(probeId);
    const probeCounted = byCount.filter((r) => r.status !== "cancelled").reduce((s, r) => s + r.n, 0);
    check(probe.body.total === probeCounted, `GET /stats/${probeId} total ${probe.body.total}, count(*) says ${probeCounted}`);
    check(Array.isArray(probe.body.messages) && probe.body.messages.length === 50, `GET /stats/${probeId} returned ${probe.body.messages?.length} messages, expected a page of 50`);

    // Each series stops early after `budgetS` (a slow endpoint must not hold the suite for hours);
    // the table then says how many requests were measured.
    const budgetMs = budgetS * 1000;
    const sentBefore = (await gateway.received()).total;
    let started = performance.now();
    const overallMs: number[] = [];
    for (let i = 0; i < requests && performance.now() - started < budgetMs; i++) overallMs.push((await statsOnce()).ms);
    const overallWallS = (performance.now() - started) / 1000;
    const sentMid = (await gateway.received()).total;
    started = performance.now();
    const oneMs: number[] = [];
    for (const id of ids) {
      if (performance.now() - started >= budgetMs) break;
      oneMs.push((await oneOnce(id)).ms);
    }
    const oneWallS = (performance.now() - started) / 1000;
    const sentAfter = (await gateway.received()).total;
    const rssFigures = rss.stop();
    const sendsDuringOverall = sentMid - sentBefore;
    const sendsDuringOne = sentAfter - sentMid;
    if (!options.quick) check(sendsDuringOverall > 0, "the dispatcher was not sending during the GET /stats series");

    const result = {
      clients,
      mailings,
      messages: messages_total,
      messages_table_mb: table_mb,
      generate_s: round1(genS),
      generate_load_s: round1(loadS),
      generate_index_vacuum_s: round1(indexS),
      due_messages: due,
      requests,
      stats_requests_measured: overallMs.length,
      stats_one_requests_measured: oneMs.length,
      stats_p50_ms: round2(percentile(overallMs, 50)),
      stats_p95_ms: round2(percentile(overallMs, 95)),
      stats_max_ms: round2(Math.max(...overallMs)),
      stats_one_p50_ms: round2(percentile(oneMs, 50)),
      stats_one_p95_ms: round2(percentile(oneMs, 95)),
      stats_one_max_ms: round2(Math.max(...oneMs)),
      sends_per_s_during_stats: Math.round(sendsDuringOverall / overallWallS),
      sends_per_s_during_stats_one: Math.round(sendsDuringOne / oneWallS),
      service_rss_peak_mb: rssFigures.peakMb,
      load_average_at_start: load,
    };
    printTable(
      `Statistics: ${messages_total.toLocaleString("en")} messages over ${mailings.toLocaleString("en")} mailings, dispatcher sending (PostgreSQL)`,
      [
        { figure: "data generated (load + indexes + vacuum), s", value: result.generate_s },
        { figure: "messages table + indexes, MB", value: table_mb },
        { figure: `GET /api/v1/stats p50, ms (${overallMs.length} req)`, value: result.stats_p50_ms },
        { figure: "GET /api/v1/stats p95, ms", value: result.stats_p95_ms, target: "≤ 50 ms", verdict: verdict(options.quick, result.stats_p95_ms <= 50) },
        { figure: "GET /api/v1/stats max, ms", value: result.stats_max_ms },
        { figure: `GET /api/v1/stats/{id} p50, ms (${oneMs.length} req)`, value: result.stats_one_p50_ms },
        { figure: "GET /api/v1/stats/{id} p95, ms", value: result.stats_one_p95_ms, target: "≤ 20 ms", verdict: verdict(options.quick, result.stats_one_p95_ms <= 20) },
        { figure: "GET /api/v1/stats/{id} max, ms", value: result.stats_one_max_ms },
        { figure: "gateway sends/s meanwhile (/stats)", value: result.sends_per_s_during_stats },
        { figure: "gateway sends/s meanwhile (/stats/{id})", value: result.sends_per_s_during_stats_one },
        { figure: "service RSS peak, MB", value: rssFigures.peakMb },
        { figure: "load average at start", value: load },
      ],
    );
    return result;
  } finally {
    await stopService(service);
    await gateway?.stop().catch(() => {});
    await (keepDb ? db.keep() : db.drop());
  }
}

if (import.meta.main) await standalone(run);
