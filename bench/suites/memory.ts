/**
 * Issue 4, target 7 — memory of the service as its own process (`bun src/main.ts`, VmRSS from
 * /proc/<pid>/status every 100 ms):
 *
 * 1. idle: a freshly started service (WORKER=1, sandbox provider, empty database, LOG_LEVEL=warn),
 *    sampled for 10 s after it answers /healthz (quick: 2 s). Target ≤ 120 MB.
 * 2. dispatching: 200,000 due messages (quick: 2,000) seeded in SQL, sent by a freshly started
 *    service (WORKER=1, default SEND_CONCURRENCY and CLAIM_BATCH) to the fake gateway (its own
 *    process) until every one is `sent`. Target ≤ 300 MB. Throughput is reported too.
 *
 *   bun bench/suites/memory.ts [--quick] [--messages 200000]
 */
import {
  check,
  flag,
  freshPostgres,
  loadAverage,
  one,
  printTable,
  round1,
  rssMonitor,
  seedClientsAndMailing,
  seedDueMessages,
  standalone,
  startGateway,
  startService,
  stopService,
  verdict,
  type GatewayProcess,
  type SuiteOptions,
  type Worker,
} from "../support";

async function idle(quick: boolean) {
  const db = await freshPostgres({ max: 4 });
  let service: Worker | null = null;
  try {
    service = await startService({ databaseUrl: db.url, worker: true });
    const monitor = rssMonitor(service.pid, 100);
    await Bun.sleep(quick ? 2_000 : 10_000);
    const health = await fetch(`${service.url}/healthz`);
    await health.arrayBuffer();
    check(health.ok, `/healthz answered ${health.status}`);
    return monitor.stop();
  } finally {
    await stopService(service);
    await db.drop();
  }
}

/** Exported for experiments: `env` is passed to the service (e.g. BUN_OPTIONS, SEND_CONCURRENCY). */
export async function dispatching(n: number, env: Record<string, string> = {}) {
  const db = await freshPostgres({ max: 4 });
  let service: Worker | null = null;
  let gateway: GatewayProcess | null = null;
  try {
    const id = await seedClientsAndMailing(db.database, n, "Memory bench");
    await seedDueMessages(db.database, id, n);
    await db.sql.unsafe(`vacuum analyze clients, mailings, messages, mailing_counts`);
    gateway = await startGateway(0);
    const started = performance.now();
    service = await startService({ databaseUrl: db.url, worker: true, providerUrl: gateway.url, env });
    const monitor = rssMonitor(service.pid, 100);
    const deadline = Date.now() + 300_000;
    let sent = 0;
    for (;;) {
      const [row] = await db.sql.unsafe<{ sent: number }[]>(
        `select coalesce(sum(n), 0)::int as sent from mailing_counts where mailing_id = $1 and status = 'sent'`,
        [id],
      );
      sent = row!.sent;
      if (sent >= n) break;
      check(service.running, "the service exited while dispatching");
      check(Date.now() < deadline, `only ${sent} of ${n} sent after 300 s`);
      await Bun.sleep(100);
    }
    const seconds = (performance.now() - started) / 1000;
    const rss = monitor.stop();
    const received = await gateway.received();
    check(received.unique === n, `the gateway received ${received.unique} distinct messages, expected ${n}`);
    const { total } = await one<{ total: number }>(db, `select count(*)::int as total from messages where status = 'sent'`);
    check(total === n, `${total} messages sent, expected ${n}`);
    return { ...rss, seconds, perSecond: Math.round(n / seconds), duplicates: received.total - received.unique };
  } finally {
    await stopService(service);
    await gateway?.stop().catch(() => {});
    await db.drop();
  }
}

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  const n = options.quick ? 2_000 : flag(argv, "messages", 200_000);
  const load = loadAverage();
  const idleRss = await idle(options.quick);
  const busy = await dispatching(n);
  const result = {
    idle_rss_peak_mb: idleRss.peakMb,
    idle_rss_last_mb: idleRss.lastMb,
    idle_samples: idleRss.samples,
    dispatch_messages: n,
    dispatch_rss_peak_mb: busy.peakMb,
    dispatch_seconds: round1(busy.seconds),
    dispatch_per_s: busy.perSecond,
    dispatch_gateway_duplicates: busy.duplicates,
    load_average_at_start: load,
  };
  printTable("Service memory (VmRSS of `bun src/main.ts`, PostgreSQL)", [
    { figure: `idle, WORKER=1, peak over ${options.quick ? 2 : 10} s, MB`, value: idleRss.peakMb, target: "≤ 120 MB", verdict: verdict(options.quick, idleRss.peakMb <= 120) },
    { figure: "idle, last sample, MB", value: idleRss.lastMb },
    { figure: `dispatching ${n.toLocaleString("en")} messages, peak, MB`, value: busy.peakMb, target: "≤ 300 MB", verdict: verdict(options.quick, busy.peakMb <= 300) },
    { figure: "dispatch: start to all sent, s (incl. start-up)", value: result.dispatch_seconds },
    { figure: "dispatch: messages/s", value: busy.perSecond.toLocaleString("en") },
    { figure: "load average at start", value: load },
  ]);
  return result;
}

if (import.meta.main) await standalone(run);
