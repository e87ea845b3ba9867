import { afterAll, describe, expect, test } from "bun:test";
import { constants, createBrotliCompress, createGzip } from "node:zlib";
import { HttpGateway } from "../../src/gateway/http";
import { startFakeGateway } from "../../src/gateway/fake-server";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

/** §7 the HTTP gateway protocol, against a real socket: classification of every kind of answer. */
describe("§7 HTTP gateway", () => {
  const fake = startFakeGateway({ token: "secret-token" });
  afterAll(() => fake.stop());
  const gateway = (overrides: Partial<{ baseUrl: string; token: string; timeoutMs: number }> = {}) =>
    new HttpGateway({ baseUrl: fake.url, token: "secret-token", timeoutMs: 500, ...overrides });
  const message = { id: 42, phone: "79101459028", text: 'Hello "world"\n' };

  test("posts /send/{id} with the bearer token and {id, phone as integer, text}", async () => {
    fake.reset();
    fake.options.failRate = 0;
    expect(await gateway().send(message)).toEqual({ outcome: "sent" });
    expect(fake.bodies).toHaveLength(1);
    expect(fake.bodies[0]).toMatchObject({ id: 42, phone: 79101459028, text: 'Hello "world"\n' });
  });

  test("a wrong token is a permanent refusal (401 → failed)", async () => {
    const result = await gateway({ token: "wrong" }).send(message);
    expect(result.outcome).toBe("failed");
  });

  test("5xx is retried", async () => {
    fake.options.failRate = 1;
    const result = await gateway().send(message);
    fake.options.failRate = 0;
    expect(result).toEqual({ outcome: "retry", error: "gateway answered HTTP 503" });
  });

  test("other 4xx fails for good", async () => {
    fake.options.rejectRate = 1;
    const result = await gateway().send(message);
    fake.options.rejectRate = 0;
    expect(result).toEqual({ outcome: "failed", error: "gateway answered HTTP 400" });
  });

  test("a 2xx with garbage in the body is still a success", async () => {
    fake.options.garbageRate = 1;
    const result = await gateway().send(message);
    fake.options.garbageRate = 0;
    expect(result.outcome).toBe("sent");
  });

  test("a gateway that hangs times out within PROVIDER_TIMEOUT_MS and is retried", async () => {
    fake.options.hangRate = 1;
    const started = performance.now();
    const result = await gateway({ timeoutMs: 300 }).send(message);
    fake.options.hangRate = 0;
    expect(result.outcome).toBe("retry");
    expect(performance.now() - started).toBeLessThan(3000);
  });

  test("408 and 429 are retried; a gateway that is down is retried", async () => {
    for (const status of [408, 429]) {
      const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("slow down", { status }) });
      const result = await gateway({ baseUrl: `http://127.0.0.1:${server.port}` }).send(message);
      await server.stop(true);
      expect(result).toEqual({ outcome: "retry", error: `gateway answered HTTP ${status}` });
    }
    const closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const port = closed.port;
    await closed.stop(true);
    const down = await gateway({ baseUrl: `http://127.0.0.1:${port}` }).send(message);
    expect(down.outcome).toBe("retry");
    expect((down as { error: string }).error).toContain("unreachable");
  });
});

/**
 * A raw HTTP/1.1 server (Bun.serve would send a streamed body chunked): each request is answered
 * 200 with `content-length: declared` and `body(socket)` writing what it writes.
 */
function rawServer(declared: number, body: (socket: import("bun").Socket<undefined>) => void) {
  const started = new Set<unknown>();
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket) {
        if (started.has(socket)) return;
        started.add(socket);
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${declared}\r\n\r\n`);
        body(socket);
      },
      drain(socket) {
        body(socket);
      },
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

/** A server declaring a 256 MiB body and writing it as fast as the client reads; `written()`: bytes so far. */
function hugeDeclaredServer() {
  const total = 256 * 1024 * 1024;
  const chunk = new Uint8Array(64 * 1024).fill(32);
  let written = 0;
  const server = rawServer(total, (socket) => {
    while (written < total) {
      const offset = written % chunk.length;
      const n = socket.write(chunk.subarray(offset));
      if (n <= 0) return;
      written += n;
      if (n < chunk.length - offset) return;
    }
  });
  return { ...server, written: () => written };
}

describe("§7 HTTP gateway: timeouts, shutdown and bodies with a declared length", () => {
  test("sends started together: the hanging ones time out, the answered ones are sent", async () => {
    const hanging = new Set<() => void>();
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(request) {
        const id = Number(new URL(request.url).pathname.split("/").pop());
        if (id % 2 === 0) await new Promise<void>((resolve) => hanging.add(resolve));
        return Response.json({ ok: true });
      },
    });
    try {
      const gateway = new HttpGateway({ baseUrl: `http://127.0.0.1:${server.port}`, token: "t", timeoutMs: 300 });
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 20 }, (_, id) => gateway.send({ id, phone: "79100000000", text: "x" })));
      expect(performance.now() - started).toBeLessThan(3000);
      for (const [id, result] of results.entries()) {
        expect(result).toEqual(id % 2 === 0 ? { outcome: "retry", error: "gateway timed out after 300 ms" } : { outcome: "sent" });
      }
      // Sends started after those have their own deadline: answered ones are sent.
      expect(await gateway.send({ id: 21, phone: "79100000000", text: "x" })).toEqual({ outcome: "sent" });
    } finally {
      for (const release of hanging) release();
      await server.stop(true);
    }
  });

  test("the shutdown signal aborts every send in flight", async () => {
    const hanging = new Set<() => void>();
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async () => {
        await new Promise<void>((resolve) => hanging.add(resolve));
        return new Response("late");
      },
    });
    try {
      const gateway = new HttpGateway({ baseUrl: `http://127.0.0.1:${server.port}`, token: "t", timeoutMs: 30_000 });
      const shutdown = new AbortController();
      const sends = Array.from({ length: 10 }, (_, id) => gateway.send({ id, phone: "79100000000", text: "x" }, shutdown.signal));
      await Bun.sleep(100);
      shutdown.abort();
      for (const result of await Promise.all(sends)) expect(result).toEqual({ outcome: "retry", error: "send aborted by shutdown" });
    } finally {
      for (const release of hanging) release();
      await server.stop(true);
    }
  });

  test("a short declared body that drips past the timeout: timed out, retried", async () => {
    const timers = new Set<ReturnType<typeof setInterval>>();
    const server = rawServer(50, (socket) => {
      if (timers.size > 0) return;
      timers.add(setInterval(() => socket.write(" "), 100));
    });
    try {
      const gateway = new HttpGateway({ baseUrl: server.url, token: "t", timeoutMs: 300 });
      const started = performance.now();
      expect(await gateway.send({ id: 1, phone: "79100000000", text: "x" })).toEqual({ outcome: "retry", error: "gateway timed out after 300 ms" });
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      for (const timer of timers) clearInterval(timer);
      server.stop();
    }
  });

  test("a declared body of 256 MiB is read no further than maxAnswerBytes (+ what is in transit)", async () => {
    const { maxAnswerBytes } = await import("../../src/gateway/http");
    const server = hugeDeclaredServer();
    try {
      const gateway = new HttpGateway({ baseUrl: server.url, token: "t", timeoutMs: 10_000 });
      expect(await gateway.send({ id: 1, phone: "79100000000", text: "x" })).toEqual({ outcome: "sent" });
      expect(server.written()).toBeLessThan(maxAnswerBytes + 16 * 1024 * 1024);
    } finally {
      server.stop();
    }
  });
});

describe("issue 15: a provider adapter's answer with a declared length", () => {
  test("a declared body of 256 MiB is read no further than maxAnswerBytes; a short one that drips past the timeout is timed out", async () => {
    const { maxAnswerBytes } = await import("../../src/gateway/http");
    const { TwilioGateway } = await import("../../src/gateway/twilio");
    const huge = hugeDeclaredServer();
    const timers = new Set<ReturnType<typeof setInterval>>();
    const drip = rawServer(50, (socket) => {
      if (timers.size === 0) timers.add(setInterval(() => socket.write(" "), 100));
    });
    const twilio = (baseUrl: string, timeoutMs: number) =>
      new TwilioGateway({ accountSid: `AC${"1f".repeat(16)}`, authToken: "t", from: "+15005550006", statusCallback: null, baseUrl, timeoutMs });
    try {
      // 2xx: Twilio took it (the body is not its JSON, so no sid to keep).
      expect(await twilio(huge.url, 10_000).send({ id: 1, phone: "79101234567", text: "x" })).toEqual({ outcome: "sent" });
      expect(huge.written()).toBeLessThan(maxAnswerBytes + 16 * 1024 * 1024);
      const started = performance.now();
      expect(await twilio(drip.url, 300).send({ id: 2, phone: "79101234567", text: "x" })).toEqual({ outcome: "retry", error: "gateway timed out after 300 ms" });
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      for (const timer of timers) clearInterval(timer);
      huge.stop();
      drip.stop();
    }
  });
});

describe("a compressed answer whose declared (compressed) length is small", () => {
  // Content-Length counts the encoded bytes; fetch decodes br/gzip/deflate/zstd, so 421 bytes of br
  // decode to 256 MiB. The answer's first bytes here already decode past maxAnswerBytes and the rest
  // never comes: a bounded read stops there (sent, or the adapter's reading of the cut-off text); a
  // whole read waits for the rest, i.e. would have held all of it, and times out.
  async function partial(encoding: "br" | "gzip"): Promise<Buffer> {
    const z = encoding === "br" ? createBrotliCompress() : createGzip();
    const out: Buffer[] = [];
    z.on("data", (d: Buffer) => out.push(d));
    z.write(Buffer.alloc(1024 * 1024, 32));
    await new Promise<void>((resolve) => z.flush(encoding === "br" ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH, () => resolve()));
    z.destroy();
    return Buffer.concat(out);
  }
  for (const encoding of ["br", "gzip"] as const) {
    test(`${encoding}: read no further than maxAnswerBytes decoded (HTTP gateway and a provider adapter)`, async () => {
      const body = await partial(encoding);
      const server = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          data(socket) {
            socket.write(`HTTP/1.1 200 OK\r\ncontent-encoding: ${encoding}\r\ncontent-length: ${body.length + 1000}\r\n\r\n`);
            socket.write(body);
          },
        },
      });
      const url = `http://127.0.0.1:${server.port}`;
      const { TwilioGateway } = await import("../../src/gateway/twilio");
      try {
        expect(await new HttpGateway({ baseUrl: url, token: "t", timeoutMs: 2000 }).send({ id: 1, phone: "79100000000", text: "x" })).toEqual({ outcome: "sent" });
        const twilio = new TwilioGateway({ accountSid: `AC${"1f".repeat(16)}`, authToken: "t", from: "+15005550006", statusCallback: null, baseUrl: url, timeoutMs: 2000 });
        expect(await twilio.send({ id: 2, phone: "79101234567", text: "x" })).toEqual({ outcome: "sent" });
      } finally {
        server.stop(true);
      }
    });
  }
});

describe("§7 the runnable fake gateway (bun run gateway:fake)", () => {
  test("serves the protocol with its flags and reports what it received", async () => {
    const probe = Bun.serve({ port: 0, fetch: () => new Response() });
    const port = probe.port!;
    await probe.stop(true);
    const proc = Bun.spawn(["bun", "run", "gateway:fake", "--port", String(port), "--reject-rate", "1"], { stdout: "pipe", stderr: "pipe" });
    try {
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 100; i++) {
        if (await fetch(`${url}/received`).then(() => true, () => false)) break;
        await Bun.sleep(50);
      }
      const result = await new HttpGateway({ baseUrl: url, token: "", timeoutMs: 1000 }).send({ id: 7, phone: "79100000000", text: "x" });
      expect(result.outcome).toBe("failed"); // --reject-rate 1 answers 400
      expect(await fetch(`${url}/received`).then((r) => r.json())).toEqual({ total: 1, unique: 1, duplicates: [] });
    } finally {
      // `bun run` forwards no signal to the server it started: stop the child first, then the wrapper.
      Bun.spawnSync(["pkill", "-TERM", "-P", String(proc.pid)]);
      proc.kill("SIGTERM");
      await proc.exited;
    }
  });
});
