/**
 * SPEC §6 shutting down: SIGTERM or SIGINT ends the process within LEASE_SECONDS even while the
 * database does not answer (results not written are covered by the leases), and a second signal
 * ends it at once. The real server process runs against PostgreSQL through a proxy the test turns
 * into a black hole.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type TestDatabase, freshDatabase } from "../support/db";
import { type Worker, killAll, startWorker, waitFor } from "../support/processes";
import { type TcpProxy, startTcpProxy } from "../support/tcp-proxy";

setDefaultTimeout(90_000);

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §6 shutting down while the database does not answer", () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  const workers: Worker[] = [];

  beforeAll(async () => {
    db = await freshDatabase("postgres");
  });
  afterEach(async () => {
    await killAll(workers.splice(0));
    await proxy?.close();
  });
  afterAll(() => db.drop());

  /** A worker whose database connections go through a fresh proxy, ticking every second. */
  async function workerBehindProxy(leaseSeconds: number): Promise<Worker> {
    const url = new URL(db.url!);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.hostname = "127.0.0.1";
    url.port = String(proxy.port);
    const worker = await startWorker({
      databaseUrl: url.toString(),
      providerUrl: "",
      env: { LEASE_SECONDS: String(leaseSeconds), PROVIDER_TIMEOUT_MS: String((leaseSeconds * 1000) / 4) },
    });
    workers.push(worker);
    // /healthz answers before the dispatcher has started; its statements must pass first.
    await worker.waitForLog((l) => l.msg === "listening");
    return worker;
  }

  /**
   * Cuts the database off and waits until a statement of the worker's is stuck in the black hole.
   * An idle dispatcher may not query for a while, so a request that reads the database is sent (its
   * answer never comes; the worker is killed under it).
   */
  async function cutOff(worker: Worker): Promise<void> {
    proxy.blackhole();
    void worker.request("GET", "/api/v1/clients").catch(() => {});
    await waitFor(async () => (proxy.dropped > 0 ? true : undefined), 20_000, "a statement sent into the black hole");
  }

  test("SIGTERM exits within LEASE_SECONDS", async () => {
    const leaseSeconds = 4;
    const worker = await workerBehindProxy(leaseSeconds);
    await cutOff(worker);
    const exit = await worker.kill("SIGTERM", 15_000);
    expect(exit.signal, "it had to be killed").toBeNull();
    expect(exit.elapsedMs).toBeLessThan(leaseSeconds * 1000);
  });

  test("a second signal exits at once", async () => {
    const worker = await workerBehindProxy(60);
    await cutOff(worker);
    worker.process.kill("SIGTERM");
    await worker.waitForLog((l) => l.msg === "shutting down");
    const exit = await worker.kill("SIGINT", 10_000);
    expect(exit.signal, "it had to be killed").toBeNull();
    expect(exit.elapsedMs).toBeLessThan(5_000);
  });
});
