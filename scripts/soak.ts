/**
 * Soak (issue 14 item 7): one worker process under a steady load — API writes, UI and API reads,
 * dispatch through the fake gateway — for a configurable time, sampling its memory, open file
 * descriptors (/proc/PID/fd), database connections (pg_stat_activity) and dead tuples
 * (pg_stat_user_tables) over time.
 *
 *   bun run soak                     # 30 minutes
 *   SOAK_MINUTES=2 bun run soak      # a short run
 *
 * Load: SOAK_LOAD=steady (the default) keeps the live data the same size once a working set is
 * reached: SOAK_CLIENTS (1,000) clients — each second deletes as many of the oldest as it created —
 * and SOAK_MAILINGS (12) mailings, the oldest deleted with its messages when a new one comes.
 * SOAK_LOAD=growing is the load of the first runs (20 creates and 2 deletes a second, mailings open
 * for 48 h): the directory, the open mailings and the messages grow all the time, and with them the
 * work per request, so its memory cannot settle.
 *
 * Memory: RSS from /proc/PID/status (split into anonymous memory and the file pages of the bun
 * executable mapped in), and unless SOAK_HEAP_STATS=0 the worker's own figures after a full GC
 * (HEAP_STATS_FILE, src/ops/heap-stats.ts; SIGUSR2 each sample): RSS, the live JS heap, the live
 * objects and their types. SOAK_HEAP_FILE keeps those samples (JSON lines) after the run.
 *
 * Database: by default a PostgreSQL cluster of the soak's own (initdb, tests/support/pg-cluster.ts)
 * with the settings a production server has by default — above all autovacuum on. The machine's
 * shared server runs with autovacuum off (TRAPS.md), and there the dead tuples of the hot tables grow
 * without bound whatever the service does; that says nothing about production. SOAK_DATABASE_URL=
 * postgres://…/postgres soaks against that server instead (a database soak_<pid> is made and
 * dropped); the autovacuum setting is printed either way.
 *
 * Prints one line per sample and a verdict: the last third's average against the first third's
 * (after a warm-up, SOAK_WARMUP_SECONDS, default 180 s and at most a third of the run), a memory
 * verdict (the live JS heap, the live objects and the RSS after GC: flat when the last third is
 * within 10 % of the first and the growth rate under 0.5 MB per 10 min for the heap, 1.5 MB for the RSS:
 * scripts/soak-verdict.ts) and the object types that changed most. Exits 1 on any answer outside
 * 2xx (the answers by kind and status are printed), or when
 * open fds or database connections grew (last third above the first third's maximum, plus
 * SEND_CONCURRENCY + 10 for fds) — the checks a short CI run (.ci/run) can make; the memory verdict
 * is printed, never an exit status (a one-minute run cannot tell).
 */
import postgres from "postgres";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { startFakeGateway } from "../src/gateway/fake-server";
import { ADMIN_API_KEY, registerSession, startWorker } from "../tests/support/processes";
import { soakServer } from "../tests/support/pg-cluster";
import { growthLimits, memoryVerdict } from "./soak-verdict";

const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const sampleEveryMs = Number(process.env.SOAK_SAMPLE_SECONDS ?? 15) * 1000;
/** steady (default): the directory and the mailings stop growing once a working set is reached; growing: the load before (20 creates, 2 deletes a second, mailings open for 48 h) */
const loadKind = process.env.SOAK_LOAD === "growing" ? "growing" : "steady";
/** clients the steady load keeps (after that, each second deletes as many of the oldest as it created) */
const workingSet = Number(process.env.SOAK_CLIENTS ?? 1000);
/** mailings the steady load keeps (one every 10 s; the oldest is deleted, with its messages) */
const keptMailings = Number(process.env.SOAK_MAILINGS ?? 12);
/** the worker's JS heap sampled too (HEAP_STATS_FILE, a full GC per sample); SOAK_HEAP_STATS=0: off */
const heapStats = process.env.SOAK_HEAP_STATS !== "0";
/** where the worker writes its heap samples; SOAK_HEAP_FILE keeps them after the run */
const heapFile = process.env.SOAK_HEAP_FILE ?? `/tmp/soak-heap-${process.pid}.jsonl`;
const dbName = `soak_${process.pid}`;
// SOAK_DATABASE_URL, or a cluster of its own that goes when this process ends (pg-cluster.ts).
const { url: serverUrl, cluster } = await soakServer();

const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const url = new URL(serverUrl);
url.pathname = `/${dbName}`;
const db = postgres(url.toString(), { max: 2, onnotice: () => {} });
const sendConcurrency = 50;
const gateway = startFakeGateway({ latencyMs: 20, failRate: 0.05 });
const worker = await startWorker({
  name: "soak",
  databaseUrl: url.toString(),
  providerUrl: gateway.url,
  env: {
    LOG_LEVEL: "warn",
    SEND_CONCURRENCY: String(sendConcurrency),
    RETRY_DELAY_SECONDS: "5",
    ...(heapStats ? { HEAP_STATS_FILE: heapFile } : {}),
  },
});

// Ctrl-C (or SIGTERM) in the middle of a run: stop the worker and drop the database (on a given
// server, SOAK_DATABASE_URL, it would stay); the "exit" handlers remove the cluster and the heap file.
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.log(`soak: ${signal}, stopping the worker and dropping ${dbName}`);
    await worker.kill("SIGTERM").catch(() => {});
    await gateway.stop().catch(() => {});
    await admin.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {});
    process.exit(130);
  });
}
process.on("exit", () => {
  if (!process.env.SOAK_HEAP_FILE) rmSync(heapFile, { force: true });
});

const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${worker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_API_KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json().catch(() => null) as any }));

// A browser session for the UI reads.
const cookie = await registerSession(worker.url);

const wall = (offsetHours: number) => new Date(Date.now() + offsetHours * 3_600_000).toISOString().slice(0, 19);
let phone = 0;
let errors = 0;
let requests = 0;
/** answers by request kind and status: a UI read that redirects to the sign-in page, or a write the
 * API refused, is not the load this soak claims to keep */
const answers = new Map<string, number>();
let unexpected = 0;
const count = (status: number, kind: string) => {
  requests++;
  if (status >= 500) errors++;
  if (status < 200 || status >= 300) unexpected++;
  const key = `${kind} ${status}`;
  answers.set(key, (answers.get(key) ?? 0) + 1);
};

/** created clients not yet deleted, oldest first; mailings made, oldest first (steady load) */
const liveClients: number[] = [];
const liveMailings: number[] = [];

/**
 * One second of load: 20 client writes, 3 edits, deletes, reads, and a mailing every 10 s.
 * Steady: once `workingSet` clients exist, the oldest are deleted as fast as new ones come, and
 * past `keptMailings` mailings the oldest is deleted (its messages go with it), so the live data
 * stays the same size. Growing: 2 deletes a second and mailings open for 48 h, as before.
 */
async function loadSecond(second: number) {
  const tag = `t${second % 10}`;
  const created: number[] = [];
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      const r = await api("POST", "/api/v1/clients", { phone_number: `7912${String(++phone).padStart(7, "0")}`, tag, timezone: "Europe/Moscow" });
      count(r.status, "POST /api/v1/clients");
      if (r.status === 201) created.push(r.body.id);
    }),
  );
  for (const id of created.slice(0, 3)) count((await api("PATCH", `/api/v1/clients/${id}`, { tag: `${tag}x` })).status, "PATCH /api/v1/clients/:id");
  if (loadKind === "growing") {
    for (const id of created.slice(3, 5)) count((await api("DELETE", `/api/v1/clients/${id}`)).status, "DELETE /api/v1/clients/:id");
  } else {
    liveClients.push(...created);
    const gone = liveClients.splice(0, Math.max(0, liveClients.length - workingSet));
    await Promise.all(gone.map(async (id) => count((await api("DELETE", `/api/v1/clients/${id}`)).status, "DELETE /api/v1/clients/:id")));
  }
  count((await api("GET", "/api/v1/clients?limit=50")).status, "GET /api/v1/clients");
  count((await api("GET", "/api/v1/stats")).status, "GET /api/v1/stats");
  for (const page of ["/", "/clients", "/mailings"]) {
    const r = await fetch(`${worker.url}${page}`, { headers: { cookie, accept: "text/html" } });
    await r.text();
    count(r.status, `GET ${page} (UI)`);
  }
  if (second % 10 === 0) {
    const r = await api("POST", "/api/v1/mailings", { text: `soak ${second}`, start_time: wall(-24), end_time: wall(24), tags_filter: [tag] });
    count(r.status, "POST /api/v1/mailings");
    if (loadKind === "steady") {
      if (r.status === 201) liveMailings.push(r.body.id);
      for (const id of liveMailings.splice(0, Math.max(0, liveMailings.length - keptMailings))) {
        count((await api("DELETE", `/api/v1/mailings/${id}`)).status, "DELETE /api/v1/mailings/:id");
      }
    }
  }
}

type Sample = {
  at: number;
  rssMb: number;
  /** of the RSS: anonymous memory (heaps, malloc) and file pages (the bun executable's code mapped in) */
  anonMb: number;
  fileMb: number;
  /** after a full GC (HEAP_STATS_FILE): RSS, the live JS heap, live JS objects; NaN without heap stats */
  rssGcMb: number;
  heapMb: number;
  objects: number;
  objectTypes: Record<string, number>;
  clients: number;
  messages: number;
  fds: number;
  connections: number;
  deadTuples: number;
  liveTuples: number;
  autovacuums: number;
  /** messages the gateway accepted (distinct ids; the steady load deletes old mailings' messages, so not counted in the database) */
  sent: number;
  requests: number;
  errors: number;
};
const samples: Sample[] = [];

/** Asks the worker for a heap sample (SIGUSR2) and waits for its line (at most 30 s). */
async function heapSample(): Promise<{ after: { rss: number }; heapSize: number; objectCount: number; objectTypeCounts: Record<string, number> } | null> {
  if (!heapStats) return null;
  const lines = () => (existsSync(heapFile) ? readFileSync(heapFile, "utf8").split("\n").filter(Boolean) : []);
  const before = lines().length;
  process.kill(worker.pid, "SIGUSR2");
  for (let i = 0; i < 300; i++) {
    const now = lines();
    if (now.length > before) return JSON.parse(now.at(-1)!);
    await Bun.sleep(100);
  }
  return null;
}

async function sample(): Promise<Sample> {
  const status = readFileSync(`/proc/${worker.pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const anonKb = Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fileKb = Number(/RssFile:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const heap = await heapSample();
  const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
  const fds = readdirSync(`/proc/${worker.pid}/fd`).length;
  const [c] = await admin`select count(*)::int as n from pg_stat_activity where datname = ${dbName} and application_name like 'notification-service%'`;
  const [d] = await db`select coalesce(sum(n_dead_tup), 0)::int as n, coalesce(sum(n_live_tup), 0)::int as live,
    coalesce(sum(autovacuum_count), 0)::int as av from pg_stat_user_tables`;
  const [s] = await db`select (select count(*)::int from messages) as messages, (select count(*)::int from clients) as clients`;
  return {
    at: Date.now(),
    rssMb: Math.round(rssKb / 1024),
    anonMb: Math.round(anonKb / 1024),
    fileMb: Math.round(fileKb / 1024),
    rssGcMb: heap ? Math.round(heap.after.rss / 1048576) : NaN,
    heapMb: heap ? mb(heap.heapSize) : NaN,
    objects: heap ? heap.objectCount : NaN,
    objectTypes: heap?.objectTypeCounts ?? {},
    clients: s!.clients,
    messages: s!.messages,
    fds,
    connections: c!.n,
    deadTuples: d!.n,
    liveTuples: d!.live,
    autovacuums: d!.av,
    sent: gateway.accepted.size,
    requests,
    errors,
  };
}

const started = Date.now();
const endAt = started + minutes * 60_000;
let nextSample = started;
let second = 0;
const [autovacuum] = await admin`select current_setting('autovacuum') as on`;
// Dead tuples only stay bounded with autovacuum on; this machine's shared server runs with it off (TRAPS.md).
console.log(
  `soak: ${minutes} min, worker pid ${worker.pid}, database ${dbName} on ${cluster ? `a cluster of its own (port ${cluster.port})` : "the given server"}; ` +
    `sample every ${sampleEveryMs / 1000} s; autovacuum ${autovacuum!.on}; load ${loadKind}` +
    (loadKind === "steady" ? ` (${workingSet} clients, ${keptMailings} mailings)` : "") +
    `; heap stats ${heapStats ? "on (a full GC in the worker per sample)" : "off"}`,
);
console.log("min\trss_mb\tanon\tfile\trss_gc\theap_mb\tobjects\tclients\tmessages\tfds\tdb_conn\tdead_tup\tlive_tup\tdead_%\tautovac\tsent\trequests\t5xx");
while (Date.now() < endAt) {
  const t0 = Date.now();
  await loadSecond(second++);
  if (Date.now() >= nextSample) {
    const s = await sample();
    samples.push(s);
    const deadPct = s.liveTuples > 0 ? ((s.deadTuples / (s.deadTuples + s.liveTuples)) * 100).toFixed(1) : "-";
    console.log(
      [((s.at - started) / 60_000).toFixed(1), s.rssMb, s.anonMb, s.fileMb, s.rssGcMb, s.heapMb, s.objects, s.clients, s.messages, s.fds, s.connections, s.deadTuples, s.liveTuples, deadPct, s.autovacuums, s.sent, s.requests, s.errors].join("\t"),
    );
    nextSample += sampleEveryMs;
  }
  const left = 1000 - (Date.now() - t0);
  if (left > 0) await Bun.sleep(left);
}

// The warm-up is left out of the verdict: pools filling, the gateway's keep-alive connections
// opening with the first mailing, and for the steady load the working set being reached (1,000
// clients at 18 a second: about a minute) and JavaScriptCore's heap and the allocator settling.
// SOAK_WARMUP_SECONDS, default 180 s, at most a third of the run.
const warmupMs = Number(process.env.SOAK_WARMUP_SECONDS ?? Math.min(180, (minutes * 60) / 3)) * 1000;
const body = samples.filter((s) => s.at - started >= warmupMs);
const third = Math.max(1, Math.floor(body.length / 3));
const avg = (xs: Sample[], k: keyof Sample) => xs.reduce((a, s) => a + (s[k] as number), 0) / xs.length;
const change = (first: number, last: number) => (first > 0 ? `${last >= first ? "+" : ""}${(((last - first) / first) * 100).toFixed(0)} %` : "n/a");
const keys = ["rssMb", "anonMb", "fileMb", "rssGcMb", "heapMb", "objects", "clients", "messages", "fds", "connections", "deadTuples"] as const;
const thirds = Object.fromEntries(keys.map((k) => [k, { first: avg(body.slice(0, third), k), last: avg(body.slice(-third), k) }])) as Record<(typeof keys)[number], { first: number; last: number }>;
const verdict = keys
  .filter((k) => !Number.isNaN(thirds[k].first))
  .map((k) => `${k}: first third ${thirds[k].first.toFixed(1)}, last third ${thirds[k].last.toFixed(1)} (${change(thirds[k].first, thirds[k].last)})`);
console.log(
  `soak done: ${requests} requests, ${errors} answered 5xx, ${samples.at(-1)?.sent ?? 0} messages sent; ` +
    `verdict over ${body.length} samples after a ${warmupMs / 1000} s warm-up, first third against last third:\n${verdict.join("\n")}`,
);
if (heapStats && body.length >= 2) {
  // Memory: the live JS heap after a full GC is what a leak of JS objects grows; RSS after the same
  // GC adds what the allocator keeps. Flat: the last third's average within 10 % of the first's and
  // the growth rate (least-squares slope) under its limit (scripts/soak-verdict.ts).
  const rate = (k: string, v: number) => (Number.isNaN(v) ? "" : `, ${v >= 0 ? "+" : ""}${k === "objects" ? Math.round(v) : v.toFixed(2) + " MB"} per 10 min`);
  const memory = memoryVerdict(body).map((l) => `${l.key} ${l.grew ? "GREW" : "flat"} (${change(l.first, l.last)}${rate(l.key, l.perTenMinutes)})`);
  const short = minutes < 10 ? "; a run under 10 minutes cannot tell: the working set and the heap are still settling" : "";
  console.log(
    `soak memory verdict: ${memory.join(", ")} (flat: last third within 10 % of the first, and at most ` +
      `${growthLimits.heapMb} MB per 10 min for heapMb, ${growthLimits.rssGcMb} MB for rssGcMb${short})`,
  );
  // Which objects grew between the first sample after the warm-up and the last one.
  const a = body[0]!.objectTypes;
  const b = body.at(-1)!.objectTypes;
  const diff = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .map((t) => ({ t, from: a[t] ?? 0, to: b[t] ?? 0 }))
    .sort((x, y) => Math.abs(y.to - y.from) - Math.abs(x.to - x.from))
    .slice(0, 12);
  console.log(`soak object types, most changed (first sample after warm-up → last):\n${diff.map((d) => `  ${d.t}: ${d.from} → ${d.to}`).join("\n")}`);
}
// Leaks a short run can see: the pools are fixed, so the connections must not go above the first
// third's maximum; the keep-alive connections to the gateway may still open up to SEND_CONCURRENCY
// more fds (a slow machine may not have started sending in the first third), plus 10 for the write
// pool's connections closed when idle and opened again; not more (a leak of one per request passes
// that within seconds).
const slack = { fds: sendConcurrency + 10, connections: 0 };
const grew = (["fds", "connections"] as const).filter((k) => {
  const firstMax = Math.max(...body.slice(0, third).map((s) => s[k]));
  return body.slice(-third).some((s) => s[k] > firstMax + slack[k]);
});
if (grew.length > 0) console.log(`soak: grew during the run: ${grew.join(", ")}`);
console.log(`soak answers:\n${[...answers].sort().map(([k, n]) => `  ${k}: ${n}`).join("\n")}`);
if (unexpected > 0) console.log(`soak: ${unexpected} answers outside 2xx: that part of the load did not happen as claimed`);

await worker.kill("SIGTERM");
await gateway.stop();
await db.end();
await admin.unsafe(`drop database if exists ${dbName} with (force)`);
await admin.end();
await cluster?.destroy();
process.exit(errors > 0 || unexpected > 0 || grew.length > 0 || body.length === 0 ? 1 : 0);
