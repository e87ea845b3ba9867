/**
 * Issue 4, target 5 — API throughput with wrk on loopback against a spawned service (WORKER=0,
 * LOG_LEVEL=warn, ADMIN_API_KEY as the bearer token) on a database of 10,000 clients:
 * `POST /api/v1/clients` (a wrk Lua script makes every phone unique: 79 + run digit + thread digit +
 * 7-digit counter) and `GET /api/v1/clients?limit=50`, each ≥ 3,000 req/s with p99 ≤ 25 ms; and, in
 * the same run with the same wrk settings, a bare Elysia route (`new Elysia().get("/", () => "ok")`,
 * bench/suites/api/bare-elysia.ts, its own Bun process) as the ceiling, reported as a ratio.
 *
 * wrk: 2 threads, 32 connections, 10 s per route after a 2 s warm-up (quick: 2 s, 1 s warm-up).
 *
 *   bun bench/suites/api.ts [--quick] [--connections 32] [--threads 2] [--seconds 10]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ADMIN_KEY,
  check,
  flag,
  freshPostgres,
  loadAverage,
  one,
  printTable,
  round2,
  rssMonitor,
  runWrk,
  standalone,
  startPlainServer,
  startService,
  stopService,
  verdict,
  type SuiteOptions,
  type Worker,
  type WrkResult,
} from "../support";

/** wrk script: POST /api/v1/clients with a unique phone per request (PHONE_RUN: one digit per wrk run). */
const postScript = `
wrk.method = "POST"
wrk.path = "/api/v1/clients"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${ADMIN_KEY}"
local zones = { "UTC", "Europe/Moscow", "Asia/Vladivostok", "America/New_York" }
local nextThread = 0
function setup(thread)
  thread:set("tid", nextThread)
  nextThread = nextThread + 1
end
local run = tonumber(os.getenv("PHONE_RUN") or "0")
local counter = 0
function request()
  counter = counter + 1
  local phone = string.format("79%d%d%07d", run, tid, counter)
  local body = '{"phone_number":"' .. phone .. '","tag":"wrk","timezone":"' .. zones[(counter % 4) + 1] .. '"}'
  return wrk.format(nil, nil, nil, body)
end
`;

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  const clients = options.quick ? 1_000 : 10_000;
  const seconds = options.quick ? 2 : flag(argv, "seconds", 10);
  const warmup = options.quick ? 1 : 2;
  const threads = flag(argv, "threads", 2);
  const connections = flag(argv, "connections", 32);
  const load = loadAverage();
  const dir = mkdtempSync(join(tmpdir(), "bench-api-"));
  const script = join(dir, "post-clients.lua");
  writeFileSync(script, postScript);
  const db = await freshPostgres({ max: 4 });
  let service: Worker | null = null;
  let bare: Awaited<ReturnType<typeof startPlainServer>> | null = null;
  try {
    await db.sql.unsafe(`
      insert into clients (phone_number, operator_code, tag, timezone)
      select '7' || lpad(g::text, 10, '0'), substr('7' || lpad(g::text, 10, '0'), 2, 3), (array['', 'vip', 'new'])[1 + g % 3],
        (array['UTC', 'Europe/Moscow', 'Asia/Vladivostok', 'America/New_York'])[1 + g % 4]
      from generate_series(1, ${clients}) g`);
    await db.sql.unsafe(`vacuum analyze clients`);

    bare = await startPlainServer("bench/suites/api/bare-elysia.ts");
    service = await startService({ databaseUrl: db.url, worker: false });
    const auth = { Authorization: `Bearer ${ADMIN_KEY}` };
    const wrk = { seconds, threads, connections };
    let phoneRun = 0;

    // Each route: a warm-up run, then the measured one.
    const measure = async (url: string, headers: Record<string, string> = {}, withScript = false): Promise<WrkResult & { warmup_requests: number }> => {
      const common = { url, threads, connections, headers, script: withScript ? script : undefined };
      const w = await runWrk({ ...common, seconds: warmup, env: { PHONE_RUN: String(phoneRun++) } });
      check(w.non2xx === 0, `${url} warm-up: ${w.non2xx} responses were not 2xx/3xx`);
      const r = await runWrk({ ...common, seconds, env: { PHONE_RUN: String(phoneRun++) } });
      const { raw: _raw, ...figures } = r;
      return { ...figures, warmup_requests: w.requests };
    };

    const bareResult = await measure(`${bare.url}/`);
    const rss = rssMonitor(service.pid, 100);
    const getResult = await measure(`${service.url}/api/v1/clients?limit=50`, auth);
    const { before } = await one<{ before: number }>(db, `select count(*)::int as before from clients`);
    const postResult = await measure(`${service.url}/api/v1/clients`, {}, true);
    const rssFigures = rss.stop();
    await Bun.sleep(200); // requests still in flight when wrk stopped
    const { after } = await one<{ after: number }>(db, `select count(*)::int as after from clients`);

    for (const [name, r] of [["bare", bareResult], ["GET", getResult], ["POST", postResult]] as const) {
      check(r.requests > 0, `${name}: wrk completed no request`);
      check(r.non2xx === 0, `${name}: ${r.non2xx} responses were not 2xx/3xx`);
      check(r.socket_errors === 0, `${name}: ${r.socket_errors} socket errors`);
    }
    // The two POST runs created at least the requests wrk counted (plus any still in flight at each stop).
    const created = after - before;
    const counted = postResult.requests + postResult.warmup_requests;
    check(created >= counted && created <= counted + 2 * connections, `POST created ${created} clients, wrk counted ${counted}`);
    const sample = await fetch(`${service.url}/api/v1/clients?limit=50`, { headers: auth }).then((r) => r.json() as Promise<{ items: unknown[] }>);
    check(sample.items.length === 50, `GET /api/v1/clients?limit=50 returned ${sample.items.length} items`);

    const result = {
      wrk: { threads, connections, seconds },
      clients_before: clients,
      load_average_at_start: load,
      bare_elysia: bareResult,
      get_clients: getResult,
      post_clients: postResult,
      get_ratio_to_bare: round2(getResult.rps / bareResult.rps),
      post_ratio_to_bare: round2(postResult.rps / bareResult.rps),
      post_created: created,
      service_rss_peak_mb: rssFigures.peakMb,
    };
    printTable(`API with wrk (-t${threads} -c${connections} -d${seconds}s, loopback, WORKER=0, ${clients.toLocaleString("en")} clients, PostgreSQL)`, [
      { figure: "bare Elysia GET /, req/s", value: Math.round(bareResult.rps) },
      { figure: "bare Elysia GET /, p50 / p99 ms", value: `${bareResult.p50_ms} / ${bareResult.p99_ms}` },
      { figure: "GET /api/v1/clients?limit=50, req/s", value: Math.round(getResult.rps), target: "≥ 3,000", verdict: verdict(options.quick, getResult.rps >= 3000) },
      { figure: "GET /api/v1/clients?limit=50, p50 / p99 ms", value: `${getResult.p50_ms} / ${getResult.p99_ms}`, target: "p99 ≤ 25", verdict: verdict(options.quick, getResult.p99_ms <= 25) },
      { figure: "GET ratio to bare Elysia", value: result.get_ratio_to_bare },
      { figure: "POST /api/v1/clients, req/s", value: Math.round(postResult.rps), target: "≥ 3,000", verdict: verdict(options.quick, postResult.rps >= 3000) },
      { figure: "POST /api/v1/clients, p50 / p99 ms", value: `${postResult.p50_ms} / ${postResult.p99_ms}`, target: "p99 ≤ 25", verdict: verdict(options.quick, postResult.p99_ms <= 25) },
      { figure: "POST ratio to bare Elysia", value: result.post_ratio_to_bare },
      { figure: "clients created by the POST runs (warm-up + measured)", value: created },
      { figure: "service RSS peak, MB", value: rssFigures.peakMb },
      { figure: "load average at start", value: load },
    ]);
    return result;
  } finally {
    await stopService(service);
    await bare?.stop().catch(() => {});
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await standalone(run);
