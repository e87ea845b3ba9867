import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { createGateway } from "../../src/gateway/select";
import { SandboxGateway } from "../../src/gateway/sandbox";
import { HttpGateway } from "../../src/gateway/http";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

describe("§2 gateway selection and the sandbox", () => {
  test("no PROVIDER_URL: the sandbox; with one: the HTTP gateway", () => {
    expect(createGateway(loadConfig({}))).toBeInstanceOf(SandboxGateway);
    expect(createGateway(loadConfig({ PROVIDER_URL: "http://127.0.0.1:1" }))).toBeInstanceOf(HttpGateway);
  });

  test("the sandbox delivers at once and remembers what it sent", async () => {
    const sandbox = new SandboxGateway({ keep: 2 });
    for (const id of [1, 2, 3]) expect(await sandbox.send({ id, phone: "79100000000", text: "t" })).toEqual({ outcome: "sent" });
    expect(sandbox.total).toBe(3);
    expect(sandbox.sent.map((m) => m.id)).toEqual([2, 3]);
  });

  test("SANDBOX_FAILURE_RATE makes that share of sends fail retryably", async () => {
    const always = createGateway(loadConfig({ SANDBOX_FAILURE_RATE: "1" }));
    expect((await always.send({ id: 1, phone: "79100000000", text: "t" })).outcome).toBe("retry");
    let i = 0;
    const half = new SandboxGateway({ failureRate: 0.5, random: () => [0.1, 0.9][i++ % 2]! });
    const outcomes = [];
    for (let id = 0; id < 4; id++) outcomes.push((await half.send({ id, phone: "79100000000", text: "t" })).outcome);
    expect(outcomes).toEqual(["retry", "sent", "retry", "sent"]);
  });
});
