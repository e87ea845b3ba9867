/**
 * Issue 16, target 3 — the embedded default (PGlite, no DATABASE_URL) end to end, as a user runs it:
 *
 * 1. `bun run start` on an empty DATA_DIR (a new temporary directory) with the fake gateway as its
 *    own process (PROVIDER_URL), timed from the spawn to the first 200 of `/` (redirects followed:
 *    the sign-in page). Target ≤ 2 s. A second start on the now initialised DATA_DIR is timed too.
 * 2. 100,000 clients (quick: 2,000) imported through `POST /api/v1/clients/import` (streamed CSV).
 * 3. One mailing for all of them, due now, through `POST /api/v1/mailings`; then sends/s from the
 *    first to the last message the gateway received (its `/received`, polled every 100 ms). Target
 *    ≥ 2,000 sends/s.
 * 4. VmRSS and VmHWM of the service from /proc/<pid>/status every 100 ms over the whole run. Target
 *    ≤ 300 MB.
 *
 * Every setting at its default (SEND_CONCURRENCY, CLAIM_BATCH, …), LOG_LEVEL=warn; `--env K=V` passes
 * more to the service (repeatable), e.g. `--env CLAIM_BATCH=2000`; `--root DIR` starts the service
 * from another checkout (an A/B against an older commit: `git archive <commit> | tar -x -C DIR`,
 * with DIR/node_modules linked to this one's).
 *
 *   bun bench/suites/embedded.ts [--quick] [--clients 100000] [--env K=V …]
 *   bun bench/suites/embedded.ts --starts 5 [--compare DIR]   (start-up only: first and second start,
 *     medians of N rounds; with --compare, the checkout in DIR alternated with this one)
 *   bun run bench --only embedded [--quick]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../tests/support/processes";
import {
  ADMIN_KEY,
  check,
  flag,
  loadAverage,
  printTable,
  repoRoot,
  round1,
  standalone,
  startGateway,
  timedRequest,
  verdict,
  wallTime,
  type GatewayProcess,
  type SuiteOptions,
} from "../support";

function extraEnv(argv: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  argv.forEach((a, i) => {
    if (a === "--env") {
      const [k, ...v] = argv[i + 1]!.split("=");
      env[k!] = v.join("=");
    }
  });
  return env;
}

/** VmRSS and VmHWM in MB. */
function memoryOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /^VmRSS:\s+(\d+)/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+)/m.exec(status);
    return rss && hwm ? { rss: Number(rss[1]) / 1024, hwm: Number(hwm[1]) / 1024 } : null;
  } catch {
    return null;
  }
}

/** The pid of the one child of `pid` (the script `bun run` started), else `pid` itself. */
function serviceChild(pid: number): number {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return children.length === 1 ? Number(children[0]) : pid;
  } catch {
    return pid;
  }
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

type Service = { url: string; pid: number; firstPageMs: number; stop(): Promise<void>; stderr(): string };

/** `bun run start` (package.json: `bun src/main.ts`) without DATABASE_URL; resolves at the first 200 of `/`. */
async function startEmbedded(dataDir: string, providerUrl: string, env: Record<string, string>, root: string): Promise<Service> {
  const port = freePort();
  const started = performance.now();
  const child = Bun.spawn([process.execPath, "run", "start"], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: process.env.HOME ?? "/tmp",
      TZ: "UTC",
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      PROVIDER_URL: providerUrl,
      ADMIN_API_KEY: ADMIN_KEY,
      LOG_LEVEL: "warn",
      ...env,
    },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  let stderr = "";
  (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk);
  })().catch(() => {});
  process.on("exit", () => child.kill("SIGKILL"));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  let firstPageMs = NaN;
  for (;;) {
    try {
      const response = await fetch(`${url}/`);
      await response.arrayBuffer();
      if (response.status === 200) {
        firstPageMs = performance.now() - started;
        break;
      }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`the service did not answer / within 120 s: ${stderr.slice(-2000)}`);
    await Bun.sleep(10);
  }
  return {
    url,
    // `bun run start` spawns `bun src/main.ts` as its child: that child is the service.
    pid: serviceChild(child.pid),
    firstPageMs,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await child.exited;
      clearTimeout(timer);
    },
  };
}

/** `phone_number,tag,timezone` then `n` rows in UTC, 2,000 rows per chunk. */
function csvStream(n: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let next = 1;
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode("phone_number,tag,timezone\n"));
        return;
      }
      if (next > n) return controller.close();
      let text = "";
      const end = Math.min(n, next + 1999);
      for (; next <= end; next++) text += `79${String(next).padStart(9, "0")},,UTC\n`;
      controller.enqueue(encoder.encode(text));
    },
  });
}

export async function measure(n: number, env: Record<string, string> = {}, root = repoRoot) {
  const dataDir = mkdtempSync(join(tmpdir(), "perfemb-"));
  let gateway: GatewayProcess | null = null;
  let service: Service | null = null;
  const samples: { t: number; rss: number; hwm: number; phase: string }[] = [];
  let phase = "start";
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    gateway = await startGateway(0);
    const t0 = performance.now();
    service = await startEmbedded(dataDir, gateway.url, env, root);
    const firstStartMs = service.firstPageMs;
    const pid = service.pid;
    const sample = () => {
      const m = memoryOf(pid);
      if (m) samples.push({ t: performance.now() - t0, ...m, phase });
    };
    sample();
    timer = setInterval(sample, 100);
    await Bun.sleep(1000);
    const idle = memoryOf(pid)!;
    const cpuStart = cpuSeconds(pid);

    phase = "import";
    const importStarted = performance.now();
    const imported = await fetch(`${service.url}/api/v1/clients/import`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" },
      body: csvStream(n),
      // @ts-expect-error Bun streams a ReadableStream body
      duplex: "half",
    });
    const report = (await imported.json()) as { created: number; failed: number };
    const importS = (performance.now() - importStarted) / 1000;
    check(imported.status === 200, `import answered ${imported.status}: ${JSON.stringify(report).slice(0, 300)}`);
    check(report.created === n, `import created ${report.created} of ${n}`);
    const afterImport = memoryOf(pid)!;
    const cpuImport = cpuSeconds(pid) - cpuStart;

    phase = "plan";
    const planStarted = performance.now();
    const created = await timedRequest(service.url, "POST", "/api/v1/mailings", {
      text: "Embedded bench",
      start_time: wallTime(-1),
      end_time: wallTime(24),
      tags_filter: [],
      codes_filter: [],
    });
    const planS = (performance.now() - planStarted) / 1000;
    check(created.status === 201, `POST /api/v1/mailings answered ${created.status}: ${JSON.stringify(created.body).slice(0, 300)}`);
    phase = "dispatch";
    const cpuPlanned = cpuSeconds(pid);
    const cpuPlan = cpuPlanned - cpuStart - cpuImport;

    let first = NaN;
    let cpuFirst = NaN;
    let lastProgress = performance.now();
    let last = NaN;
    const deadline = Date.now() + 900_000;
    for (;;) {
      const received = await gateway.received();
      const now = performance.now();
      if (received.unique > 0 && Number.isNaN(first)) {
        first = now;
        cpuFirst = cpuSeconds(pid);
      }
      if (now - lastProgress > 10_000) {
        lastProgress = now;
        console.error(`  ${received.unique} of ${n} sent, ${Math.round((received.unique / (now - first)) * 1000)}/s, RSS ${round1(memoryOf(pid)?.rss ?? NaN)} MB, load ${loadAverage()}`);
      }
      if (received.unique >= n) {
        last = now;
        check(received.total === n, `the gateway received ${received.total} sends for ${n} messages`);
        break;
      }
      check(Date.now() < deadline, `only ${received.unique} of ${n} sent after 900 s`);
      check(memoryOf(pid) !== null, `the service exited: ${service.stderr().slice(-2000)}`);
      await Bun.sleep(100);
    }
    const dispatchS = (last - first) / 1000;
    const cpuDispatch = cpuSeconds(pid) - cpuFirst;
    await Bun.sleep(1000);
    phase = "after";
    sample();
    clearInterval(timer);
    const final = memoryOf(pid)!;
    const peak = Math.max(...samples.map((s) => s.rss));
    await service.stop();
    service = null;

    // The second start: the DATA_DIR exists now (no initdb), the usual case after the first day.
    service = await startEmbedded(dataDir, gateway.url, env, root);
    const secondStartMs = service.firstPageMs;
    await service.stop();
    service = null;

    return {
      firstStartMs,
      secondStartMs,
      idleMb: idle.rss,
      afterImportMb: afterImport.rss,
      importS,
      planS,
      cpuImport,
      cpuPlan,
      cpuDispatch,
      dispatchS,
      perSecond: Math.round((n - 1) / dispatchS),
      peakRssMb: peak,
      hwmMb: final.hwm,
      finalRssMb: final.rss,
      samples,
    };
  } finally {
    clearInterval(timer);
    await service?.stop().catch(() => {});
    await gateway?.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * `--starts N [--compare DIR]`: only the start-up, N rounds of a first start (empty DATA_DIR) and a
 * second start (the same directory), each to the first 200 of `/`, with the VmHWM of the first
 * start when it answered; with `--compare`, the checkout in DIR too, alternated round by round.
 */
async function starts(rounds: number, roots: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const load = loadAverage();
  const gateway = await startGateway(0);
  const figures = new Map(roots.map((root) => [root, { first: [] as number[], second: [] as number[], hwm: [] as number[] }]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const root of roots) {
        const dataDir = mkdtempSync(join(tmpdir(), "perfemb-start-"));
        try {
          const first = await startEmbedded(dataDir, gateway.url, env, root);
          const hwm = memoryOf(first.pid)?.hwm ?? NaN;
          await first.stop();
          const second = await startEmbedded(dataDir, gateway.url, env, root);
          await second.stop();
          const f = figures.get(root)!;
          f.first.push(first.firstPageMs);
          f.second.push(second.firstPageMs);
          f.hwm.push(hwm);
        } finally {
          rmSync(dataDir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await gateway.stop().catch(() => {});
  }
  const loadAfter = loadAverage();
  const rows = roots.flatMap((root) => {
    const f = figures.get(root)!;
    const name = root === repoRoot ? "this checkout" : root;
    return [
      { figure: `${name}: first start (empty DATA_DIR) → 200 of /, ms, every round`, value: f.first.map(Math.round).join(", ") },
      { figure: `${name}: first start, median ms`, value: Math.round(median(f.first)), target: "≤ 2,000 ms", verdict: verdict(false, median(f.first) <= 2000) },
      { figure: `${name}: second start → 200 of /, ms, every round`, value: f.second.map(Math.round).join(", ") },
      { figure: `${name}: second start, median ms`, value: Math.round(median(f.second)) },
      { figure: `${name}: VmHWM at the first start's first page, MB, median`, value: round1(median(f.hwm)) },
    ];
  });
  printTable(`Embedded default (PGlite): start-up only, ${rounds} rounds${roots.length > 1 ? " alternated" : ""}`, [
    ...rows,
    { figure: "load average at start / end", value: `${load} / ${loadAfter}` },
  ]);
  return {
    rounds,
    load_average: [load, loadAfter],
    ...Object.fromEntries(
      roots.map((root) => {
        const f = figures.get(root)!;
        return [root === repoRoot ? "this" : root, { first_start_ms: f.first.map(Math.round), second_start_ms: f.second.map(Math.round), vm_hwm_mb: f.hwm.map(round1) }];
      }),
    ),
  };
}

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  if (argv.includes("--starts")) {
    const compareAt = argv.indexOf("--compare");
    const roots = compareAt >= 0 ? [repoRoot, argv[compareAt + 1]!] : [repoRoot];
    return starts(flag(argv, "starts", 5), roots, extraEnv(argv));
  }
  const n = options.quick ? 500 : flag(argv, "clients", 100_000);
  const env = extraEnv(argv);
  const rootAt = argv.indexOf("--root");
  const root = rootAt >= 0 ? argv[rootAt + 1]! : repoRoot;
  const load = loadAverage();
  const r = await measure(n, env, root);
  const loadAfter = loadAverage();
  const byPhase = new Map<string, number>();
  for (const s of r.samples) byPhase.set(s.phase, Math.max(byPhase.get(s.phase) ?? 0, s.rss));
  printTable(`Embedded default (PGlite, no DATABASE_URL): ${n.toLocaleString("en")} clients, one mailing${Object.keys(env).length ? ` (${JSON.stringify(env)})` : ""}${root !== repoRoot ? ` from ${root}` : ""}`, [
    { figure: "`bun run start` → first 200 of /, empty DATA_DIR, ms", value: Math.round(r.firstStartMs), target: "≤ 2,000 ms", verdict: verdict(options.quick, r.firstStartMs <= 2000) },
    { figure: "`bun run start` → first 200 of /, second start, ms", value: Math.round(r.secondStartMs) },
    { figure: "import (POST /api/v1/clients/import), s", value: round1(r.importS) },
    { figure: "plan (POST /api/v1/mailings), s", value: round1(r.planS) },
    { figure: "dispatch, first to last send, s", value: round1(r.dispatchS) },
    { figure: "sends/s", value: r.perSecond.toLocaleString("en"), target: "≥ 2,000", verdict: verdict(options.quick, r.perSecond >= 2000) },
    { figure: "service CPU s: import / plan / dispatch", value: `${round1(r.cpuImport)} / ${round1(r.cpuPlan)} / ${round1(r.cpuDispatch)}` },
    { figure: "service CPU per send, µs (2,000/s on one core needs ≤ 500)", value: Math.round((r.cpuDispatch / n) * 1e6) },
    { figure: "RSS idle after start, MB", value: round1(r.idleMb) },
    { figure: "RSS peak: start / import / plan / dispatch, MB", value: ["start", "import", "plan", "dispatch"].map((p) => round1(byPhase.get(p) ?? NaN)).join(" / ") },
    { figure: "RSS peak (100 ms samples) / VmHWM, MB", value: `${round1(r.peakRssMb)} / ${round1(r.hwmMb)}`, target: "≤ 300 MB", verdict: verdict(options.quick, r.hwmMb <= 300) },
    { figure: "RSS 1 s after the last send, MB", value: round1(r.finalRssMb) },
    { figure: "load average at start / end", value: `${load} / ${loadAfter}` },
  ]);
  return {
    clients: n,
    env,
    first_start_ms: Math.round(r.firstStartMs),
    second_start_ms: Math.round(r.secondStartMs),
    import_s: round1(r.importS),
    plan_s: round1(r.planS),
    dispatch_s: round1(r.dispatchS),
    sends_per_s: r.perSecond,
    cpu_us_per_send: Math.round((r.cpuDispatch / n) * 1e6),
    rss_idle_mb: round1(r.idleMb),
    rss_peak_mb: round1(r.peakRssMb),
    vm_hwm_mb: round1(r.hwmMb),
    load_average: [load, loadAfter],
  };
}

if (import.meta.main) await standalone(run);
