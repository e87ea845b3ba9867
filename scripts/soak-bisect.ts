/**
 * Which kind of request grows the worker's memory? A companion of the soak (scripts/soak.ts, issue
 * 14 item 7): one worker, then phases of N requests of one kind each (API stats, the client list,
 * the three UI pages, a client create + delete; and an idle phase), three rounds. Before and after
 * each phase the worker reports its memory after a full GC (HEAP_STATS_FILE): JavaScriptCore's extra
 * memory (what native objects and large strings report), the cell heap, the live objects, RSS.
 * A leak in one kind of request grows in every round; warm-up (code compiled, caches filled) only in
 * the first.
 *
 *   bun scripts/soak-bisect.ts      # SOAK_BISECT_REQUESTS=1500 requests a phase, 8 at a time
 *
 * Database: the soak's (a cluster of its own unless SOAK_DATABASE_URL; see soak.ts).
 */
import postgres from "postgres";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { startFakeGateway } from "../src/gateway/fake-server";
import { ADMIN_API_KEY, registerSession, startWorker } from "../tests/support/processes";
import { soakServer } from "../tests/support/pg-cluster";

// SOAK_DATABASE_URL, or a cluster of its own that goes when this process ends (pg-cluster.ts).
const { url: serverUrl, cluster } = await soakServer();
const dbName = `soak_bisect_${process.pid}`;
const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const url = new URL(serverUrl);
url.pathname = `/${dbName}`;
const heapFile = `/tmp/soak-bisect-${process.pid}.jsonl`;
process.on("exit", () => rmSync(heapFile, { force: true }));
// Ctrl-C: exit (the worker is killed by tests/support/processes.ts, the cluster and the file above).
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));
const gateway = startFakeGateway({ latencyMs: 20, failRate: 0.05 });
const worker = await startWorker({
  name: "bisect",
  databaseUrl: url.toString(),
  providerUrl: gateway.url,
  env: { LOG_LEVEL: "warn", SEND_CONCURRENCY: "50", RETRY_DELAY_SECONDS: "5", HEAP_STATS_FILE: heapFile },
});
const api = (method: string, path: string, body?: unknown) =>
  fetch(`${worker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_API_KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => null)) as any }));
const cookie = await registerSession(worker.url);
const page = async (p: string) => {
  const r = await fetch(`${worker.url}${p}`, { headers: { cookie, accept: "text/html" } });
  await r.text();
  return r.status;
};
let phone = 0;
const wall = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString().slice(0, 19);
// Some data for the pages and the stats: 500 clients, 5 mailings to tag t0.
for (let i = 0; i < 500; i++)
  await api("POST", "/api/v1/clients", { phone_number: `7913${String(++phone).padStart(7, "0")}`, tag: `t${i % 10}`, timezone: "Europe/Moscow" });
for (let i = 0; i < 5; i++) await api("POST", "/api/v1/mailings", { text: `m ${i}`, start_time: wall(-24), end_time: wall(24), tags_filter: ["t0"] });

async function sample() {
  const lines = () => (existsSync(heapFile) ? readFileSync(heapFile, "utf8").split("\n").filter(Boolean) : []);
  const n = lines().length;
  process.kill(worker.pid, "SIGUSR2");
  while (lines().length <= n) await Bun.sleep(50);
  const d = JSON.parse(lines().at(-1)!);
  return { extra: d.extraMemorySize / 1048576, cells: (d.heapSize - d.extraMemorySize) / 1048576, rss: d.after.rss / 1048576, objects: d.objectCount };
}
const kinds: Record<string, () => Promise<unknown>> = {
  idle: () => Bun.sleep(10),
  stats: () => api("GET", "/api/v1/stats"),
  list: () => api("GET", "/api/v1/clients?limit=50"),
  ui_dash: () => page("/"),
  ui_clients: () => page("/clients"),
  ui_mailings: () => page("/mailings"),
  create_delete: async () => {
    const r = await api("POST", "/api/v1/clients", { phone_number: `7914${String(++phone).padStart(7, "0")}`, tag: "t1", timezone: "Europe/Moscow" });
    if (r.status === 201) await api("DELETE", `/api/v1/clients/${r.body.id}`);
  },
};
const N = Number(process.env.SOAK_BISECT_REQUESTS ?? 1500);
await sample();
await sample();
for (const round of [1, 2, 3]) {
  for (const [name, run] of Object.entries(kinds)) {
    const a = await sample();
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i++ < N) await run();
      }),
    );
    const b = await sample();
    console.log(
      `round ${round} ${name.padEnd(14)} extra ${a.extra.toFixed(2)} → ${b.extra.toFixed(2)} (${b.extra - a.extra >= 0 ? "+" : ""}${(b.extra - a.extra).toFixed(3)})  cells ${a.cells.toFixed(2)} → ${b.cells.toFixed(2)}  objects ${a.objects} → ${b.objects}  rss ${b.rss.toFixed(0)}`,
    );
  }
}
await worker.kill("SIGTERM");
await gateway.stop();
await admin.unsafe(`drop database if exists ${dbName} with (force)`);
await admin.end();
await cluster?.destroy();
rmSync(heapFile, { force: true });
process.exit(0);
