/**
 * A runnable fake SMS gateway speaking the protocol of SPEC §7, for tests, benchmarks and demos:
 *
 *   bun run gateway:fake --port 4010 --latency-ms 20 --fail-rate 0.1 --hang-rate 0.01 --garbage-rate 0.05
 *
 * It records every message id it received (and how often), so a test can prove "exactly once".
 * GET /received answers `{"total": n, "unique": n, "duplicates": [[id, count], …]}`; POST /reset forgets.
 * Failures answer 503 (retryable); `--reject-rate` answers 400 (permanent); hangs never answer;
 * garbage answers 200 with a body that is not JSON. Hostile answers (issue 14): `--reset-rate` breaks
 * the connection after the status line, `--drip-rate` answers 200 one byte every 100 ms for a minute,
 * `--huge-rate` answers 200 with `--huge-bytes` (64 MiB) of body, streamed.
 */
export type FakeGatewayOptions = {
  port?: number;
  hostname?: string;
  latencyMs?: number;
  failRate?: number;
  rejectRate?: number;
  hangRate?: number;
  garbageRate?: number;
  /** share of sends whose connection breaks after the status line (the gateway got the request) */
  resetRate?: number;
  /** share of sends answered 200 one byte every 100 ms for a minute (past any sane timeout) */
  dripRate?: number;
  /** share of sends answered 200 with a body of `hugeBytes` */
  hugeRate?: number;
  /** size of a huge body (default 64 MiB), streamed in 64 KiB chunks, never held whole */
  hugeBytes?: number;
  /** When set, requests without `Authorization: Bearer <token>` get 401. */
  token?: string;
  random?: () => number;
  /** awaited before each answer (after `latencyMs`): a test holds sends at the gateway until it has acted */
  hold?: () => Promise<unknown>;
};

export type FakeGateway = {
  url: string;
  port: number;
  /** id → times received (every request, whatever was answered) */
  received: Map<number, number>;
  /** id → times answered with success */
  accepted: Map<number, number>;
  /** the bodies received, in order */
  bodies: { id: number; phone: number; text: string; at: number }[];
  /** the most send requests it was answering at once (since start or reset) */
  readonly maxInFlight: number;
  /** change behaviour while running */
  options: FakeGatewayOptions;
  reset(): void;
  stop(): Promise<void>;
};

export function startFakeGateway(options: FakeGatewayOptions = {}): FakeGateway {
  const received = new Map<number, number>();
  const accepted = new Map<number, number>();
  const bodies: FakeGateway["bodies"] = [];
  const hanging = new Set<() => void>();
  let inFlight = 0;
  let maxInFlight = 0;
  const opts = options;
  const random = () => (opts.random ?? Math.random)();

  const server = Bun.serve({
    port: options.port ?? 0,
    hostname: options.hostname ?? "127.0.0.1",
    idleTimeout: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method === "GET" && url.pathname === "/received") {
        const duplicates = [...received].filter(([, n]) => n > 1);
        return Response.json({ total: [...received.values()].reduce((a, b) => a + b, 0), unique: received.size, duplicates });
      }
      if (request.method === "POST" && url.pathname === "/reset") {
        received.clear();
        accepted.clear();
        bodies.length = 0;
        return Response.json({ ok: true });
      }
      const match = /^\/send\/(\d+)$/.exec(url.pathname);
      if (request.method !== "POST" || !match) return new Response("not found", { status: 404 });
      if (opts.token && request.headers.get("authorization") !== `Bearer ${opts.token}`) {
        return Response.json({ code: 401, message: "unauthorized" }, { status: 401 });
      }
      let body: { id: number; phone: number; text: string };
      try {
        body = (await request.json()) as typeof body;
      } catch {
        return Response.json({ code: 400, message: "body is not JSON" }, { status: 400 });
      }
      const id = Number(match[1]);
      if (body.id !== id || typeof body.phone !== "number" || typeof body.text !== "string") {
        return Response.json({ code: 400, message: "bad body" }, { status: 400 });
      }
      received.set(id, (received.get(id) ?? 0) + 1);
      bodies.push({ ...body, at: Date.now() });
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await answer(id);
      } finally {
        inFlight--;
      }
    },
  });

  async function answer(id: number): Promise<Response> {
    if (opts.latencyMs) await Bun.sleep(opts.latencyMs);
    if (opts.hold) await opts.hold();
    const roll = random();
    let edge = opts.hangRate ?? 0;
    if (roll < edge) {
      await new Promise<void>((resolve) => hanging.add(resolve));
      return new Response("", { status: 503 });
    }
    if (roll < (edge += opts.failRate ?? 0)) return Response.json({ code: 1, message: "try later" }, { status: 503 });
    if (roll < (edge += opts.rejectRate ?? 0)) return Response.json({ code: 2, message: "rejected" }, { status: 400 });
    accepted.set(id, (accepted.get(id) ?? 0) + 1);
    if (roll < (edge += opts.garbageRate ?? 0)) return new Response("<html>\u0000garbage", { status: 200 });
    if (roll < (edge += opts.resetRate ?? 0)) return new Response(broken(), { status: 200 });
    if (roll < (edge += opts.dripRate ?? 0)) return new Response(drip(), { status: 200 });
    if (roll < (edge += opts.hugeRate ?? 0)) return new Response(huge(opts.hugeBytes ?? 64 * 1024 * 1024), { status: 200 });
    return Response.json({ code: 0, message: "OK" });
  }

  /** A body that fails after its first bytes: Bun drops the connection mid-answer. */
  function broken(): ReadableStream<Uint8Array> {
    return new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"code":0,'));
        setTimeout(() => controller.error(new Error("connection reset by the fake gateway")), 5);
      },
    });
  }

  function drip(): ReadableStream<Uint8Array> {
    let sent = 0;
    return new ReadableStream({
      async pull(controller) {
        await Bun.sleep(100);
        if (++sent > 600) controller.close();
        else controller.enqueue(new Uint8Array([32]));
      },
    });
  }

  function huge(bytes: number): ReadableStream<Uint8Array> {
    const chunk = new Uint8Array(64 * 1024).fill(120);
    let left = bytes;
    return new ReadableStream({
      pull(controller) {
        if (left <= 0) return controller.close();
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        controller.enqueue(piece);
      },
    });
  }

  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    received,
    accepted,
    bodies,
    options: opts,
    get maxInFlight() {
      return maxInFlight;
    },
    reset() {
      maxInFlight = inFlight;
      received.clear();
      accepted.clear();
      bodies.length = 0;
    },
    async stop() {
      for (const release of hanging) release();
      hanging.clear();
      await server.stop(true);
    },
  };
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const num = (name: string, fallback: number) => Number(flag(args, name) ?? fallback);
  const gateway = startFakeGateway({
    port: num("port", 4010),
    hostname: flag(args, "host") ?? "127.0.0.1",
    latencyMs: num("latency-ms", 0),
    failRate: num("fail-rate", 0),
    rejectRate: num("reject-rate", 0),
    hangRate: num("hang-rate", 0),
    garbageRate: num("garbage-rate", 0),
    resetRate: num("reset-rate", 0),
    dripRate: num("drip-rate", 0),
    hugeRate: num("huge-rate", 0),
    hugeBytes: num("huge-bytes", 64 * 1024 * 1024),
    token: flag(args, "token"),
  });
  console.log(JSON.stringify({ level: "info", msg: "fake gateway listening", url: gateway.url }));
  const stop = async () => {
    await gateway.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
