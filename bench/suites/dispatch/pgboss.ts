/**
 * Issue 4, target 1 (b): pg-boss doing the same sends, tuned fairly. N jobs are inserted with
 * `insert()` in batches (not timed), then `work()` runs `workers` workers (localConcurrency) fetching
 * `batchSize` jobs each, back to back while batches come back full (burstWhenBatchFull). Every job
 * is the same HTTP POST, through the same HttpGateway the service uses. Timed from `work()` to every
 * job `completed` in pg-boss's table.
 *
 * `--inflight shared` (default) caps the sends in flight across all workers at `--concurrency`, like
 * the service's SEND_CONCURRENCY; `--inflight batch` sends each fetched batch at once (Promise.all:
 * up to workers × batchSize in flight).
 *
 *   bun bench/suites/dispatch/pgboss.ts --gateway http://127.0.0.1:4710 --n 200000 --workers 8 --batch-size 1000
 */
import { PgBoss } from "pg-boss";
import postgres from "postgres";
import { HttpGateway } from "../../../src/gateway/http";
import { arg, cpuMeter, check, freshPostgres, gatewayAt, limiter, main, rssMonitor } from "../../support";

type JobData = { id: number; phone: string };

await main(async () => {
  const n = Number(arg("n", "2000"));
  const workers = Number(arg("workers", "8"));
  const batchSize = Number(arg("batch-size", "1000"));
  const concurrency = Number(arg("concurrency", "100"));
  const inflight = arg("inflight", "shared");
  const gateway = gatewayAt(arg("gateway", "http://127.0.0.1:4710"));
    const gatewayPid = Number(arg("gateway-pid", "0")) || null;
  const queue = "bench-sms";

  const fresh = await freshPostgres({ migrate: false, max: 2 });
  const sqlc = postgres(fresh.url, { max: 1, onnotice: () => {} });
  const boss = new PgBoss({ connectionString: fresh.url, max: 10, schedule: false, supervise: false, migrate: true });
  const errors: unknown[] = [];
  boss.on("error", (error) => errors.push(error));
  try {
    await boss.start();
    await boss.createQueue(queue, { retryLimit: 2, retryDelay: 1 });

    const seedStarted = performance.now();
    for (let from = 1; from <= n; from += 10_000) {
      const jobs = [];
      for (let id = from; id < Math.min(from + 10_000, n + 1); id++) jobs.push({ data: { id, phone: `7${String(id).padStart(10, "0")}` } });
      await boss.insert(queue, jobs);
    }
    await sqlc.unsafe("vacuum analyze pgboss.job");
    const seedMs = performance.now() - seedStarted;
    await gateway.reset();

    const http = new HttpGateway({ baseUrl: gateway.url, token: "bench-token", timeoutMs: 10_000 });
    const slot = limiter(inflight === "shared" ? concurrency : Number.MAX_SAFE_INTEGER);
    let handled = 0;
    let failed = 0;
    const sendOne = async (data: JobData) => {
      const result = await slot(() => http.send({ id: data.id, phone: data.phone, text: "Bench message" }));
      if (result.outcome !== "sent") {
        failed++;
        throw new Error(`send ${data.id}: ${JSON.stringify(result)}`);
      }
    };

    const rss = rssMonitor(process.pid, 25);
    const cpu = cpuMeter(gatewayPid, fresh.name);
    const started = performance.now();
    await boss.work<JobData>(
      queue,
      { localConcurrency: workers, batchSize, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        await Promise.all(jobs.map((job) => sendOne(job.data)));
        handled += jobs.length;
      },
    );
    // Wait for the handlers, then for pg-boss to have written every completion.
    let completed = 0;
    const deadline = Date.now() + Math.max(120_000, n * 2);
    for (;;) {
      if (handled >= n) {
        const [row] = await sqlc<{ n: number }[]>`select count(*)::int as n from pgboss.job where name = ${queue} and state = 'completed'`;
        completed = row!.n;
        if (completed >= n) break;
        await Bun.sleep(5);
      } else {
        await Bun.sleep(10);
      }
      if (Date.now() > deadline) throw new Error(`pg-boss did not finish: handled ${handled}, completed ${completed}, errors ${errors.length}`);
    }
    const ms = performance.now() - started;
    const rssPeakMb = rss.stop().peakMb;
    const cpuS = cpu.stop();
    await boss.offWork(queue);

    const received = await gateway.received();
    check(completed === n, `pg-boss completed ${completed} of ${n}`);
    check(failed === 0, `${failed} sends failed`);
    check(received.total === n && received.unique === n, `gateway received each id once: total ${received.total}, unique ${received.unique}`);
    return {
      n,
      workers,
      batchSize,
      inflight: inflight === "shared" ? concurrency : "batch",
      ms: Math.round(ms),
      perSecond: Math.round((n / ms) * 1000),
      seedMs: Math.round(seedMs),
      rssPeakMb,
      cpuS,
      errors: errors.length,
    };
  } finally {
    await boss.stop({ graceful: false, close: true, timeout: 2000 }).catch(() => {});
    await sqlc.end({ timeout: 5 });
    await fresh.drop();
  }
});
