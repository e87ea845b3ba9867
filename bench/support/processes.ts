/**
 * Processes of the benchmarks: the service (`bun src/main.ts`, see tests/support/processes.ts), the
 * fake gateway (src/gateway/fake-server.ts) and any plain server as their own processes, wrk runs
 * parsed, and one authenticated request to the service.
 */
import { fileURLToPath } from "node:url";
import { freePort, startWorker, type Worker } from "../../tests/support/processes";
import { round2 } from "./cli";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
export const ADMIN_KEY = "bench-admin-key-0123456789abcdef";

/** Spawns `bun src/main.ts` against `databaseUrl` and waits for /healthz. */
export function startService(options: {
  databaseUrl: string;
  worker: boolean;
  providerUrl?: string;
  env?: Record<string, string>;
  name?: string;
}): Promise<Worker> {
  return startWorker({
    name: options.name ?? "service",
    databaseUrl: options.databaseUrl,
    // An empty value counts as unset: the built-in sandbox provider.
    providerUrl: options.providerUrl ?? "",
    adminApiKey: ADMIN_KEY,
    env: { WORKER: options.worker ? "1" : "0", LOG_LEVEL: "warn", ...options.env },
    startTimeoutMs: 60_000,
  });
}

/**
 * SIGTERM, then SIGKILL after `timeoutMs`. (Worker.kill() of tests/support leaves a 15 s timer
 * behind that keeps a bench process alive; this one clears its timer.)
 */
export async function stopService(worker: Worker | null, timeoutMs = 20_000): Promise<void> {
  if (!worker || !worker.running) return;
  worker.process.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = await Promise.race([
    worker.process.exited.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    worker.process.kill("SIGKILL");
    await worker.process.exited;
  }
}

export type Server = { url: string; pid: number; stop(): Promise<void> };

/**
 * Spawns `bun <args>` in the repository on a free loopback port (`port` gives the arguments or
 * environment that carry it) and waits until `ready(url)` resolves; killed when this process exits.
 */
async function spawnServer(args: (port: number) => string[], ready: (url: string) => Promise<boolean>, env: Record<string, string> = {}): Promise<Server> {
  const port = freePort();
  const proc = Bun.spawn([process.execPath, ...args(port)], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), ...env },
    stdout: "ignore",
    stderr: "inherit",
  });
  process.on("exit", () => {
    try {
      proc.kill("SIGKILL");
    } catch {
      // gone
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (await ready(url).catch(() => false)) break;
    if (proc.exitCode !== null) throw new Error(`${args(port).join(" ")} exited with ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${args(port).join(" ")} did not start`);
    await Bun.sleep(50);
  }
  return {
    url,
    pid: proc.pid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** Spawns `bun <script>` with PORT set and waits until `path` answers 2xx. */
export function startPlainServer(script: string, path = "/"): Promise<Server> {
  return spawnServer(
    () => [script],
    async (url) => {
      const r = await fetch(`${url}${path}`);
      await r.arrayBuffer();
      return r.ok;
    },
  );
}

/** What the fake gateway says it received. */
export type Received = { total: number; unique: number; duplicates: [number, number][] };

/** The fake gateway (src/gateway/fake-server.ts) as its own process, so it has its own event loop. */
export type GatewayProcess = { url: string; pid: number | null; reset(): Promise<void>; received(): Promise<Received>; stop(): Promise<void> };

/** Starts the fake gateway on a free loopback port as its own process and waits until it answers. */
export async function startGateway(latencyMs = 0): Promise<GatewayProcess & { pid: number }> {
  const server = await spawnServer(
    (port) => ["src/gateway/fake-server.ts", "--port", String(port), "--latency-ms", String(latencyMs)],
    async (url) => (await fetch(`${url}/received`)).ok,
  );
  return { ...gatewayAt(server.url), pid: server.pid, stop: server.stop };
}

/** Attaches to an already running fake gateway by URL (a bench child gets it from its parent). */
export function gatewayAt(url: string): GatewayProcess {
  return {
    url,
    pid: null,
    async reset() {
      await fetch(`${url}/reset`, { method: "POST" }).then((r) => r.arrayBuffer());
    },
    async received() {
      return (await (await fetch(`${url}/received`)).json()) as Received;
    },
    async stop() {},
  };
}

export type WrkResult = {
  requests: number;
  seconds: number;
  rps: number;
  latency_avg_ms: number;
  p50_ms: number;
  p75_ms: number;
  p90_ms: number;
  p99_ms: number;
  non2xx: number;
  socket_errors: number;
};

/** wrk's duration text (`850.00us`, `1.23ms`, `2.00s`, `1.00m`) in milliseconds. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`unreadable wrk duration "${text}"`);
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "ms" ? v : m[2] === "s" ? v * 1000 : v * 60_000;
}

/** Parses the output of `wrk --latency`. */
export function parseWrk(out: string): WrkResult {
  const need = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output lacks ${what}:\n${out}`);
    return m;
  };
  const total = need(/(\d+) requests in ([\d.]+)(us|ms|s|m)/, "the request count");
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    seconds: wrkMs(total[2]! + total[3]!) / 1000,
    rps: Number(need(/Requests\/sec:\s+([\d.]+)/, "Requests/sec")[1]),
    latency_avg_ms: round2(wrkMs(need(/Latency\s+([\d.]+(?:us|ms|s|m))/, "the average latency")[1]!)),
    p50_ms: round2(wrkMs(need(/50%\s+([\d.]+(?:us|ms|s|m))/, "p50")[1]!)),
    p75_ms: round2(wrkMs(need(/75%\s+([\d.]+(?:us|ms|s|m))/, "p75")[1]!)),
    p90_ms: round2(wrkMs(need(/90%\s+([\d.]+(?:us|ms|s|m))/, "p90")[1]!)),
    p99_ms: round2(wrkMs(need(/99%\s+([\d.]+(?:us|ms|s|m))/, "p99")[1]!)),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socket_errors: errors ? errors.slice(1).reduce((s, x) => s + Number(x), 0) : 0,
  };
}

/** Runs wrk with --latency and returns its parsed figures (and its raw output). */
export async function runWrk(options: {
  url: string;
  seconds: number;
  threads: number;
  connections: number;
  headers?: Record<string, string>;
  script?: string;
  env?: Record<string, string>;
}): Promise<WrkResult & { raw: string }> {
  const args = ["wrk", "--latency", `-t${options.threads}`, `-c${options.connections}`, `-d${options.seconds}s`, "--timeout", "5s"];
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push("-H", `${k}: ${v}`);
  if (options.script) args.push("-s", options.script);
  args.push(options.url);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...options.env } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${err}${out}`);
  return { ...parseWrk(out), raw: out };
}

/** One authenticated request to the service; answers status, elapsed ms and parsed body. */
export async function timedRequest(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; ms: number; body: any }> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep the text
  }
  return { status: response.status, ms, body: parsed };
}

export type { Worker };
