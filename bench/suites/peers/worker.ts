/**
 * Issue 16, target 4 (scale-out): one dispatcher process of several sharing one database. Started by
 * bench/suites/peers.ts (scaleout) with the database's URL; prints READY once connected, waits for a line on stdin,
 * then drains (claims and sends until nothing is due) and reports what it sent. Like the service, it
 * lifts Bun's fetch cap when its gateway concurrency needs it (src/ops/http-cap.ts).
 *
 *   bun bench/suites/peers/worker.ts --database-url postgres://…/nsb_x --gateway http://127.0.0.1:4710 --concurrency 200
 */
import { loadConfig } from "../../../src/config";
import { openPostgres } from "../../../src/db/client";
import { Dispatcher } from "../../../src/dispatch/dispatcher";
import { HttpGateway } from "../../../src/gateway/http";
import { systemClock } from "../../../src/clock";
import { createLogger } from "../../../src/ops/logger";
import { relaunch, relaunchFor } from "../../../src/ops/http-cap";
import { arg, main, rssMonitor } from "../../support";

await main(async () => {
  const defaults = loadConfig({});
  const concurrency = Number(arg("concurrency", String(defaults.sendConcurrency)));
  const gatewayConcurrency = Number(arg("gateway-concurrency", "0")) || (process.argv.includes("--concurrency") ? concurrency : defaults.gatewayConcurrency);
  const relaunchPlan = relaunchFor(gatewayConcurrency, process.env, process);
  if (relaunchPlan) throw new Error(`could not lift Bun's fetch cap: ${await relaunch(relaunchPlan)}`);
  const database = openPostgres(arg("database-url", ""), { max: 10 });
  const http = new HttpGateway({ baseUrl: arg("gateway", "http://127.0.0.1:4710"), token: "bench-token", timeoutMs: 10_000 });
  const dispatcher = new Dispatcher(database, http, systemClock, createLogger("warn"), {
    concurrency,
    gatewayConcurrency,
    claimBatch: Number(arg("claim-batch", String(defaults.claimBatch))),
    leaseSeconds: 60,
    sendTimeoutMs: 10_000,
    retryDelaySeconds: 300,
    tick: null,
  });
  try {
    await database.rows((await import("drizzle-orm")).sql`select 1`);
    process.stdout.write("READY\n");
    const reader = Bun.stdin.stream().getReader();
    await reader.read();
    const rss = rssMonitor(process.pid, 25);
    const started = performance.now();
    await dispatcher.drain();
    const ms = performance.now() - started;
    await dispatcher.stop(1000);
    const result = {
      sent: dispatcher.stats.sent,
      handedBack: (dispatcher as unknown as { handedBack: number }).handedBack,
      ms: Math.round(ms),
      rssPeakMb: rss.stop().peakMb,
    };
    // The parent reads PostgreSQL's CPU while this worker's backends still live: it says when.
    process.stdout.write("DONE\n");
    await reader.read();
    return result;
  } finally {
    await database.close();
  }
});
