/**
 * Issue 16: Bun's fetch keeps at most 256 requests in flight unless BUN_CONFIG_MAX_HTTP_REQUESTS is
 * set before the process starts. A worker whose GATEWAY_CONCURRENCY (here: SEND_CONCURRENCY, which
 * it follows) asks for more replaces itself at start-up with the variable set (src/ops/http-cap.ts),
 * so the gateway sees that many requests at once. Without it, at most 256 arrive together.
 *
 * Runs only when DATABASE_URL points at a PostgreSQL server (the test seeds the worker's database
 * from here; PGlite belongs to one process).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { startFakeGateway } from "../../src/gateway/fake-server";
import { freshDatabase } from "../support/db";
import { createOpenMailing, insertClients, startWorker, statusCounts, waitFor, workerFixture } from "../support/processes";

setDefaultTimeout(180_000);

const CLIENTS = 400;

describe.skipIf(!process.env.DATABASE_URL)("[postgres] SEND_CONCURRENCY above Bun's 256 requests (needs DATABASE_URL)", () => {
  const fixture = workerFixture();
  const { workers } = fixture;

  test("SEND_CONCURRENCY=400 against a slow gateway: 400 requests in flight at once, same pid, every message sent once", async () => {
    const tdb = (fixture.tdb = await freshDatabase("postgres"));
    // Slow enough that every request of the first wave is still open when the last one starts.
    const gateway = (fixture.gateway = startFakeGateway({ latencyMs: 3000 }));
    const env = { TICK: "* * * * * *", SEND_CONCURRENCY: String(CLIENTS), CLAIM_BATCH: "500", LOG_LEVEL: "info" };
    const worker = await startWorker({ databaseUrl: tdb.url!, providerUrl: gateway.url, env, keepLine: (l) => l.msg !== "send", startTimeoutMs: 90_000 });
    workers.push(worker);
    const started = await worker.waitForLog((l) => l.msg === "dispatcher started");

    await insertClients(tdb.database, CLIENTS);
    const mailingId = await createOpenMailing(worker);
    await waitFor(async () => ((await statusCounts(tdb!.database, mailingId)).sent === CLIENTS ? true : undefined), 45_000, "every message sent", 200);

    expect(gateway.maxInFlight).toBe(CLIENTS);
    expect(started.max_http_requests).toBeGreaterThanOrEqual(CLIENTS);
    expect(gateway.received.size).toBe(CLIENTS);
    expect([...gateway.received.values()].every((n) => n === 1)).toBe(true);
    expect(worker.lines.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);
    // The process replaced itself (execve): the pid the test started is the one that answers and stops.
    const stopped = await worker.kill("SIGTERM");
    expect(stopped.code).toBe(0);
  });
});
