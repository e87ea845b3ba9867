import { afterAll, describe, expect, test } from "bun:test";
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
