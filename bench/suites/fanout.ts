/**
 * Issue 4, target 2 — fan-out: N clients (1,000,000; quick 5,000) over six time zones from UTC+14 to
 * UTC−11, inserted with one generate_series statement; then one mailing matching all of them created
 * through the HTTP API of a spawned service process (`bun src/main.ts`, WORKER=1, sandbox provider).
 * Measured: time until `POST /api/v1/mailings` returns (every message planned, committed) ≤ 10 s, and
 * the service's RSS peak (VmRSS every 50 ms) ≤ 200 MB. Checked: N messages exist, all `scheduled`,
 * and the trigger-maintained counters agree.
 *
 * The mailing opens in two days (wall time), so the dispatcher stays idle: the figure is planning only.
 *
 *   bun bench/suites/fanout.ts [--quick]
 */
import {
  benchZones,
  check,
  freshPostgres,
  loadAverage,
  one,
  printTable,
  round1,
  rssMonitor,
  standalone,
  startService,
  stopService,
  timedRequest,
  verdict,
  wallTime,
  type SuiteOptions,
} from "../support";

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const n = options.quick ? 5_000 : 1_000_000;
  const load = loadAverage();
  const db = await freshPostgres({ max: 4 });
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  try {
    const seedStarted = performance.now();
    const zones = `array[${benchZones.map((z) => `'${z}'`).join(",")}]::text[]`;
    // phone 79 + 9 digits; operator code = digits 2–4 of the phone; zones round-robin; a few tags.
    await db.sql.unsafe(`
      insert into clients (phone_number, operator_code, tag, timezone)
      select p, substr(p, 2, 3), (array['', 'vip', 'new', 'old'])[1 + g % 4], (${zones})[1 + g % ${benchZones.length}]
      from (select g, '79' || lpad(g::text, 9, '0') as p from generate_series(1, ${n}) g) s`);
    await db.sql.unsafe(`vacuum analyze clients`);
    const seedS = (performance.now() - seedStarted) / 1000;
    const { clients } = await one<{ clients: number }>(db, `select count(*)::int as clients from clients`);
    check(clients === n, `expected ${n} clients, found ${clients}`);

    service = await startService({ databaseUrl: db.url, worker: true });
    await Bun.sleep(500); // let start-up settle before taking the baseline
    const monitor = rssMonitor(service.pid, 50);
    const baselineMb = monitor.peak();
    const response = await timedRequest(service.url, "POST", "/api/v1/mailings", {
      text: "Fan-out bench: one mailing for every client",
      start_time: wallTime(48),
      end_time: wallTime(72),
      tags_filter: [],
      codes_filter: [],
    });
    await Bun.sleep(300); // memory freed after the answer still counts towards the peak
    const rss = monitor.stop();
    check(response.status === 201, `POST /api/v1/mailings answered ${response.status}: ${JSON.stringify(response.body).slice(0, 500)}`);
    const mailingId = response.body.id as number;

    const { total, scheduled } = await one<{ total: number; scheduled: number }>(db,
      `select count(*)::int as total, (count(*) filter (where status = 'scheduled'))::int as scheduled from messages where mailing_id = $1`,
      [mailingId],
    );
    const { counted } = await one<{ counted: number }>(db,
      `select coalesce(sum(n), 0)::int as counted from mailing_counts where mailing_id = $1 and status = 'scheduled'`,
      [mailingId],
    );
    const stats = await timedRequest(service.url, "GET", `/api/v1/stats/${mailingId}?limit=1`);
    check(total === n, `expected ${n} messages, found ${total}`);
    check(scheduled === n, `expected ${n} scheduled messages, found ${scheduled}`);
    check(counted === n, `mailing_counts says ${counted} scheduled, count(*) says ${n}`);
    check(stats.status === 200 && stats.body.total === n, `GET /stats/${mailingId} total ${stats.body?.total}, expected ${n}`);
    const zonesPlanned = await db.sql.unsafe<{ due_at: string }[]>(
      `select distinct due_at::text from messages where mailing_id = $1`,
      [mailingId],
    );
    check(zonesPlanned.length === benchZones.length, `expected ${benchZones.length} distinct due instants, found ${zonesPlanned.length}`);

    const planS = response.ms / 1000;
    const result = {
      clients: n,
      zones: benchZones.length,
      seed_s: round1(seedS),
      plan_s: Math.round(planS * 100) / 100,
      messages_planned: total,
      messages_per_s: Math.round(n / planS),
      rss_baseline_mb: baselineMb,
      rss_peak_mb: rss.peakMb,
      rss_after_mb: rss.lastMb,
      rss_samples: rss.samples,
      load_average_at_start: load,
    };
    printTable(`Fan-out: ${n.toLocaleString("en")} clients, one mailing through POST /api/v1/mailings (PostgreSQL)`, [
      { figure: "clients inserted (generate_series), s", value: result.seed_s },
      { figure: "POST /api/v1/mailings until answered, s", value: result.plan_s, target: "≤ 10 s", verdict: verdict(options.quick, planS <= 10) },
      { figure: "messages planned", value: total.toLocaleString("en") },
      { figure: "messages planned per second", value: result.messages_per_s.toLocaleString("en") },
      { figure: "service RSS before the POST, MB", value: baselineMb },
      { figure: "service RSS peak, MB", value: rss.peakMb, target: "≤ 200 MB", verdict: verdict(options.quick, rss.peakMb <= 200) },
      { figure: "service RSS after, MB", value: rss.lastMb },
      { figure: "load average at start", value: load },
    ]);
    return result;
  } finally {
    await stopService(service);
    await db.drop();
  }
}

if (import.meta.main) await standalone(run);
