/**
 * Issue 16, targets 1, 2 and 4: the service against its peers — pg-boss (8 workers × batchSize
 * 1000, as its docs tune it) and a bare `fetch` loop — on PostgreSQL, interleaved in one run: every
 * round runs each contender once, in its own process on its own database, against one fake gateway
 * process; the table gives every round and the median, and CPU µs per message from /proc for the
 * contender's process, its PostgreSQL backends and the gateway.
 *
 *   bun run bench --only peers [--quick]              all three, in this order (`--quick`: n = 2,000, one round, no verdicts)
 *   bun bench/suites/peers.ts [loopback|latency|scaleout] [flags]   one of them (or all), alone
 *
 *   loopback [--n 50000] [--rounds 2] [--service-args "--concurrency 300 --gateway-concurrency 64"] [--roots /work/wt/other]
 *       1: the service at its defaults, the mailing's planning timed (MailingService.create), against
 *          pg-boss (8 workers × batchSize 1000, 100 in flight shared, and each batch at once) and a
 *          bare fetch loop with 100 in flight.
 *   latency [--n 20000] [--rounds 2] [--latency-ms 200] [--concurrency 2000] [--service-concurrency 3000]
 *       2: a gateway answering in 200 ms; the service with README's setting (SEND_CONCURRENCY=3000:
 *          sends/s wanted × (latency + 0.1 s) for 10,000/s, README "Sizing for a slow gateway"; it
 *          lifts Bun's fetch cap itself),
 *          pg-boss (batch at once: up to 8 × 1000 in flight) and a bare loop with 2,000 in flight
 *          (both started with BUN_CONFIG_MAX_HTTP_REQUESTS=4096).
 *   scaleout [--n 20000] [--rounds 1] [--latency-ms 200] [--concurrency 200] [--processes 1,2,3]
 *       4: K dispatcher processes (peers/worker.ts) on one database; throughput from the moment all
 *          are connected to the last one done.
 *
 * A child that fails (a crash, a message lost or sent twice) fails the suite; a missed target does not.
 * Before 2026-11-30 this was bench/experiments/issue16.ts (and issue16-worker.ts).
 */
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { cpuMeter, databaseUrl, freshPostgres, printTable, resultMarker, round2, seedClientsAndMailing, seedDueMessages, standalone, startGateway, statusCounts, verdict, type SuiteOptions } from "../support";
import { sql } from "drizzle-orm";

const here = fileURLToPath(new URL(".", import.meta.url));
const suite = fileURLToPath(new URL("./dispatch/", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const modes = ["loopback", "latency", "scaleout"] as const;
type Mode = (typeof modes)[number];
let argv: string[] = [];
let quick = false;
const flag = (name: string, fallback: string) => {
  const i = argv.lastIndexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
type Result = Record<string, any> & { ok: boolean };
const log = (msg: string) => process.stderr.write(`[peers] ${msg}\n`);
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "—");

async function child(script: string, args: (string | number)[], env: Record<string, string> = {}, root?: string): Promise<Result> {
  // `root`: another checkout (an A/B against an older commit), its own copy of the suite.
  const proc = Bun.spawn(["bun", root ? `${root}/bench/suites/dispatch/${script}` : `${suite}${script}`, ...args.map(String)], {
    cwd: root ?? repoRoot,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DATABASE_URL: databaseUrl ?? "postgres://postgres@127.0.0.1:5432/postgres", ...env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 600_000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  const line = stdout.split("\n").find((l) => l.startsWith(resultMarker));
  if (!line) return { ok: false, error: `${script}: no result\n${stderr.slice(-1500)}` };
  return JSON.parse(line.slice(resultMarker.length)) as Result;
}

type Contender = { label: string; script: string; args: (string | number)[]; env?: Record<string, string>; root?: string };

async function interleaved(contenders: Contender[], rounds: number, gw: string[]): Promise<Result[][]> {
  const all: Result[][] = contenders.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    for (const [i, c] of contenders.entries()) {
      const r = await child(c.script, [...c.args, ...gw], c.env, c.root);
      all[i]!.push(r);
      log(`round ${round}/${rounds} ${c.label}: ${r.ok ? `${fmt(r.perSecond)} msg/s${r.planMs ? ` (planning ${r.planMs} ms)` : ""}${r.handedBack ? `, handed back ${r.handedBack}` : ""}, CPU s self/pg/gw ${r.cpuS.self}/${r.cpuS.postgres}/${r.cpuS.gateway}, RSS ${r.rssPeakMb} MB, load ${loadavg()[0]!.toFixed(2)}` : `FAILED ${String(r.error).slice(0, 400)}`}`);
    }
  }
  return all;
}

function summary(contenders: Contender[], all: Result[][], n: number): { rates: number[]; text: string } {
  const rows: string[] = ["| contender | every round, msg/s | median | CPU µs/msg: process / PostgreSQL / gateway = total (median) | RSS peak MB (max) |", "|---|---|---:|---|---:|"];
  const rates: number[] = [];
  for (const [i, c] of contenders.entries()) {
    const ok = all[i]!.filter((r) => r.ok);
    const rate = median(ok.map((r) => r.perSecond));
    rates.push(rate);
    const us = (key: string) => median(ok.map((r) => (r.cpuS[key] * 1e6) / n));
    const [p, g, w] = [us("self"), us("postgres"), us("gateway")];
    rows.push(`| ${c.label} | ${all[i]!.map((r) => (r.ok ? fmt(r.perSecond) : "fail")).join(" / ")} | ${fmt(rate)} | ${fmt(p)} / ${fmt(g)} / ${fmt(w)} = ${fmt(p + g + w)} | ${fmt(Math.max(...ok.map((r) => r.rssPeakMb)), 1)} |`);
  }
  return { rates, text: rows.join("\n") };
}

const header = () => `${new Date().toISOString()}, ${cpus().length} cores (${cpus()[0]?.model}), Bun ${Bun.version}, load average at start ${loadavg().map((x) => x.toFixed(2)).join(" / ")}`;

async function loopback(): Promise<Outcome> {
  const n = Number(flag("n", quick ? "2000" : "50000"));
  const rounds = Number(flag("rounds", quick ? "1" : "2"));
  // `--service-args "a b;c d"`: one service contender per `;`-separated set of extra flags (A/B).
  const variants = flag("service-args", "").split(";").map((v) => v.split(" ").filter(Boolean));
  // `--roots "/work/wt/a;/work/wt/b"`: the service of other checkouts too (each has bench/suites/dispatch/service.ts), interleaved with this one.
  const roots = flag("roots", "").split(";").filter(Boolean);
  const gateway = await startGateway(0);
  const gw = ["--gateway", gateway.url, "--gateway-pid", String(gateway.pid)];
  const services: Contender[] = [
    ...variants.map((v) => ({ label: `service, defaults${v.length ? ` + ${v.join(" ")}` : ""}, planning timed`, script: "service.ts", args: ["--n", n, "--plan", ...v] })),
    ...roots.map((root) => ({ label: `service at ${root}, defaults, planning timed`, script: "service.ts", args: ["--n", n, "--plan"], root })),
  ];
  const contenders: Contender[] = [
    ...services,
    { label: "pg-boss 8 × 1000, 100 in flight", script: "pgboss.ts", args: ["--n", n, "--workers", 8, "--batch-size", 1000, "--concurrency", 100, "--inflight", "shared"] },
    { label: "pg-boss 8 × 1000, each batch at once", script: "pgboss.ts", args: ["--n", n, "--workers", 8, "--batch-size", 1000, "--inflight", "batch"] },
    { label: "bare fetch loop, 100 in flight", script: "fetch.ts", args: ["--n", n, "--concurrency", 100] },
  ];
  const started = header();
  try {
    const all = await interleaved(contenders, rounds, gw);
    const { rates, text } = summary(contenders, all, n);
    const [bossShared, bossBatch, bare] = rates.slice(-3) as [number, number, number];
    const boss = Math.max(bossShared, bossBatch);
    console.log(`\n## Issue 16 target 1: loopback gateway, n = ${fmt(n)}, ${rounds} rounds interleaved\n\n${started}; load at end ${loadavg().map((x) => x.toFixed(2)).join(" / ")}\n\n${text}\n`);
    for (const [i, c] of contenders.slice(0, services.length).entries()) {
      console.log(`${c.label}: / pg-boss (the better of its two, medians) **${fmt(rates[i]! / boss, 2)}×** (target ≥ 1.1×); / bare loop **${fmt(rates[i]! / bare, 2)}×** (target ≥ 0.6×)`);
    }
    const vsBoss = round2(rates[0]! / boss);
    const vsBare = round2(rates[0]! / bare);
    return {
      mode: "loopback",
      ok: all.every((rs) => rs.every((r) => r.ok)),
      perSecond: rates[0]!,
      rows: [
        { figure: "1. loopback, defaults: service / pg-boss (the better of its two)", value: `${vsBoss}×`, target: "≥ 1.1×", verdict: verdict(quick, vsBoss >= 1.1) },
        { figure: "1. loopback, defaults: service / bare loop, 100 in flight", value: `${vsBare}×`, target: "≥ 0.6×", verdict: verdict(quick, vsBare >= 0.6) },
      ],
    };
  } finally {
    await gateway.stop();
  }
}

async function latency(): Promise<Outcome> {
  const n = Number(flag("n", quick ? "2000" : "20000"));
  const rounds = Number(flag("rounds", quick ? "1" : "2"));
  const latencyMs = Number(flag("latency-ms", "200"));
  const concurrency = Number(flag("concurrency", "2000"));
  // README's sizing: the sends/s the bare loop's in-flight count allows (concurrency ÷ latency) ×
  // (latency + 0.1 s), for the time a slot is held beyond the request (claim, result write).
  const serviceConcurrency = Number(flag("service-concurrency", String(latencyMs > 0 ? Math.round((concurrency / latencyMs) * (latencyMs + 100)) : concurrency)));
  const gateway = await startGateway(latencyMs);
  const gw = ["--gateway", gateway.url, "--gateway-pid", String(gateway.pid)];
  const raised = { BUN_CONFIG_MAX_HTTP_REQUESTS: "4096" };
  const contenders: Contender[] = [
    { label: `service, SEND_CONCURRENCY=${serviceConcurrency} (README), planning timed`, script: "service.ts", args: ["--n", n, "--plan", "--concurrency", serviceConcurrency] },
    { label: "pg-boss 8 × 1000, each batch at once (BUN_CONFIG_MAX_HTTP_REQUESTS=4096)", script: "pgboss.ts", args: ["--n", n, "--workers", 8, "--batch-size", 1000, "--inflight", "batch"], env: raised },
    { label: `bare fetch loop, ${concurrency} in flight (BUN_CONFIG_MAX_HTTP_REQUESTS=4096)`, script: "fetch.ts", args: ["--n", n, "--concurrency", concurrency], env: raised },
  ];
  const started = header();
  try {
    const all = await interleaved(contenders, rounds, gw);
    const { rates, text } = summary(contenders, all, n);
    console.log(`\n## Issue 16 target 2: gateway latency ${latencyMs} ms, n = ${fmt(n)}, ${rounds} rounds interleaved\n\n${started}; load at end ${loadavg().map((x) => x.toFixed(2)).join(" / ")}\n\n${text}\n`);
    console.log(`service / pg-boss: **${fmt(rates[0]! / rates[1]!, 2)}×** (target ≥ 1.2×); service / bare loop: **${fmt(rates[0]! / rates[2]!, 2)}×** (target ≥ 0.7×); handed back: ${all[0]!.map((r) => r.handedBack ?? "—").join(" / ")}`);
    const vsBoss = round2(rates[0]! / rates[1]!);
    const vsBare = round2(rates[0]! / rates[2]!);
    const rss = Math.max(...all[0]!.filter((r) => r.ok).map((r) => r.rssPeakMb));
    const handedBack = all[0]!.reduce((a, r) => a + (r.handedBack ?? 0), 0);
    return {
      mode: "latency",
      ok: all.every((rs) => rs.every((r) => r.ok)),
      perSecond: rates[0]!,
      rows: [
        { figure: `2. ${latencyMs} ms gateway: service / pg-boss`, value: `${vsBoss}×`, target: "≥ 1.2×", verdict: verdict(quick, vsBoss >= 1.2) },
        { figure: `2. ${latencyMs} ms gateway: service / bare loop, ${concurrency} in flight`, value: `${vsBare}×`, target: "≥ 0.7×", verdict: verdict(quick, vsBare >= 0.7) },
        { figure: `2. ${latencyMs} ms gateway: service RSS peak, messages handed back`, value: `${fmt(rss, 1)} MB, ${handedBack}`, target: "≤ 250 MB, 0", verdict: verdict(quick, rss <= 250 && handedBack === 0) },
      ],
    };
  } finally {
    await gateway.stop();
  }
}

/** K worker processes on one freshly seeded database; resolves with msg/s and CPU. */
async function scaleRun(k: number, n: number, concurrency: number, gateway: { url: string; pid: number | null }, extra: string[]): Promise<Result> {
  const fresh = await freshPostgres();
  try {
    const mailingId = await seedClientsAndMailing(fresh.database, n);
    await seedDueMessages(fresh.database, mailingId, n);
    await fresh.database.rows(sql`vacuum analyze clients, mailings, messages, mailing_counts`);
    await fetch(`${gateway.url}/reset`, { method: "POST" }).then((r) => r.arrayBuffer());
    const procs = Array.from({ length: k }, () =>
      Bun.spawn(["bun", `${here}peers/worker.ts`, "--database-url", fresh.url, "--gateway", gateway.url, "--concurrency", String(concurrency), ...extra], {
        cwd: repoRoot,
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
    // Wait for every READY, keeping what each prints.
    const outputs = procs.map(() => ({ text: "" }));
    const readers = procs.map((p, i) =>
      (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of p.stdout) outputs[i]!.text += decoder.decode(chunk);
      })(),
    );
    const deadline = Date.now() + 30_000;
    while (!outputs.every((o) => o.text.includes("READY"))) {
      if (Date.now() > deadline) throw new Error(`workers not ready: ${await new Response(procs[0]!.stderr).text()}`);
      await Bun.sleep(20);
    }
    const cpu = cpuMeter(gateway.pid, fresh.name);
    const selfBefore = procs.map((p) => ticks(p.pid));
    const started = performance.now();
    for (const p of procs) {
      p.stdin.write("go\n");
      p.stdin.flush();
    }
    const selfAfter: number[] = [];
    await Promise.all(procs.map(async (p, i) => {
      // Each worker says DONE when drained and waits: its CPU and its backends' are read then.
      while (!outputs[i]!.text.includes("DONE") && p.exitCode === null) await Bun.sleep(5);
      selfAfter[i] = ticks(p.pid);
    }));
    const ms = performance.now() - started;
    const cpuS = cpu.stop();
    for (const p of procs) {
      p.stdin.write("exit\n");
      p.stdin.flush();
    }
    await Promise.all(procs.map((p) => p.exited));
    await Promise.all(readers);
    const results = outputs.map((o) => JSON.parse(o.text.split("\n").find((l) => l.startsWith(resultMarker))!.slice(resultMarker.length)) as Result);
    const counts = await statusCounts(fresh.database);
    const received = (await (await fetch(`${gateway.url}/received`)).json()) as { total: number; unique: number };
    const ok = results.every((r) => r.ok) && counts.sent === n && received.unique === n && received.total === n;
    const self = selfAfter.reduce((a, t, i) => a + (t - selfBefore[i]!), 0) / 100;
    return {
      ok,
      ...(ok ? {} : { error: JSON.stringify({ counts, received, results: results.map((r) => r.error ?? r.sent) }) }),
      perSecond: Math.round((n / ms) * 1000),
      ms: Math.round(ms),
      shares: results.map((r) => r.sent),
      handedBack: results.reduce((a, r) => a + (r.handedBack ?? 0), 0),
      rssPeakMb: Math.max(...results.map((r) => r.rssPeakMb ?? 0)),
      cpuS: { self, postgres: cpuS.postgres, gateway: cpuS.gateway },
    };
  } finally {
    await fresh.drop();
  }
}

function ticks(pid: number): number {
  try {
    const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

async function scaleout(): Promise<Outcome> {
  const n = Number(flag("n", quick ? "2000" : "20000"));
  const rounds = Number(flag("rounds", "1"));
  const latencyMs = Number(flag("latency-ms", "200"));
  const concurrency = Number(flag("concurrency", "200"));
  const ks = flag("processes", "1,2,3").split(",").map(Number);
  const extra = flag("worker-args", "").split(" ").filter(Boolean);
  const gateway = await startGateway(latencyMs);
  const started = header();
  const all: Result[][] = ks.map(() => []);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [i, k] of ks.entries()) {
        const r = await scaleRun(k, n, concurrency, gateway, extra).catch((error) => ({ ok: false, error: String(error) }) as Result);
        all[i]!.push(r);
        log(`round ${round}/${rounds} ${k} process(es): ${r.ok ? `${fmt(r.perSecond)} msg/s, shares ${r.shares.join("/")}, handed back ${r.handedBack}, CPU s workers/pg/gw ${r.cpuS.self}/${r.cpuS.postgres}/${r.cpuS.gateway}, load ${loadavg()[0]!.toFixed(2)}` : `FAILED ${r.error}`}`);
      }
    }
  } finally {
    await gateway.stop();
  }
  const contenders = ks.map((k) => ({ label: `${k} process(es), SEND_CONCURRENCY=${concurrency}${extra.length ? ` ${extra.join(" ")}` : ""}`, script: "", args: [] }));
  const { rates, text } = summary(contenders, all, n);
  console.log(`\n## Issue 16 target 4: scale-out, gateway latency ${latencyMs} ms, n = ${fmt(n)}, ${rounds} rounds interleaved\n\n${started}; load at end ${loadavg().map((x) => x.toFixed(2)).join(" / ")}\n\n${text}\n`);
  console.log(ks.map((k, i) => `${k}: ${fmt(rates[i]! / rates[0]!, 2)}×`).join(", ") + " of one process (targets: 2 → ≥ 1.8×, 3 → ≥ 2.5×)");
  const target = (k: number) => (k === 2 ? 1.8 : k === 3 ? 2.5 : null);
  return {
    mode: "scaleout",
    ok: all.every((rs) => rs.every((r) => r.ok)),
    perSecond: rates[0]!,
    rows: ks.flatMap((k, i) => {
      const t = target(k);
      const x = round2(rates[i]! / rates[0]!);
      return t === null ? [] : [{ figure: `4. scale-out, ${latencyMs} ms gateway: ${k} processes / 1`, value: `${x}×`, target: `≥ ${t}×`, verdict: verdict(quick, x >= t) }];
    }),
  };
}

type Outcome = { mode: Mode; ok: boolean; perSecond: number; rows: { figure: string; value: string; target: string; verdict: string }[] };

export async function run(options: SuiteOptions): Promise<{ ok: boolean; results: Outcome[] }> {
  argv = options.argv;
  quick = options.quick;
  const chosen = modes.filter((m) => argv.includes(m));
  const results: Outcome[] = [];
  for (const mode of chosen.length ? chosen : modes) {
    results.push(mode === "loopback" ? await loopback() : mode === "latency" ? await latency() : await scaleout());
  }
  printTable("Issue 16: the service against pg-boss and a bare loop (targets 1, 2, 4)", results.flatMap((r) => r.rows));
  return { ok: results.every((r) => r.ok), results };
}

if (import.meta.main) await standalone(run);
