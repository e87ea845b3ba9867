/**
 * Start-up: config → database → migrations → HTTP server + dispatcher; SIGTERM/SIGINT shut down.
 * The only module that touches the process (env, signals, listening).
 */
import { type Config, ConfigError, loadConfig } from "./config";
import type { Database } from "./db/client";
import type { DataDirClaim } from "./db/embedded-image";
import { currentMaxHttpRequests, relaunch, relaunchFor, startEnvironment } from "./ops/http-cap";
import { createLogger } from "./ops/logger";
import { embeddedGuard, embeddedJscSettings, startMemoryGuard } from "./ops/memory";

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`configuration error: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger(config.logLevel);
// Bun caps fetch at 256 requests in flight unless told so at start: a worker that may need more
// replaces itself once with the cap raised (ops/http-cap.ts). So does an embedded process, with
// JSC's collection budget fixed (ops/memory.ts). Nothing was opened yet.
const relaunchPlan = relaunchFor(config.worker ? config.gatewayConcurrency : 0, process.env, process, embeddedJscSettings(config.databaseUrl), startEnvironment(process.env));
if (relaunchPlan) {
  const failure = await relaunch(relaunchPlan);
  logger.warn("could not restart with the start-up settings it needs; Bun's defaults apply", {
    settings: relaunchPlan.set,
    gateway_concurrency: config.gatewayConcurrency,
    max_http_requests: currentMaxHttpRequests(process.env),
    hint: `set ${Object.entries(relaunchPlan.set).map(([k, v]) => `${k}=${v}`).join(" ")} before starting`,
    error: failure,
  });
}

/** Writes what the asynchronous log destination still holds, then exits. */
async function exit(code: number): Promise<never> {
  await logger.flush();
  process.exit(code);
}

/** A busy port is a setting to change, reported like the configuration errors (no stack trace). */
async function portInUse(): Promise<never> {
  console.error(`configuration error: PORT: ${config.port} is already in use on ${config.host} (stop what uses it or choose another PORT)`);
  return exit(2);
}
const addressInUse = (error: unknown) => (error as { code?: unknown })?.code === "EADDRINUSE";

// The port is tried before the database is opened (PGlite's first start may take seconds;
// a remote database may be away): bound and let go at once. The real bind below still reports a
// port taken in between. PORT=0 (any free port) has nothing to try.
if (config.port !== 0) {
  try {
    Bun.serve({ port: config.port, hostname: config.host, fetch: () => new Response() }).stop(true);
  } catch (error) {
    if (addressInUse(error)) await portInUse();
    // Anything else (an address not on this host, …) is reported by the real bind.
  }
}

// Claimed before the rest of the service loads: a new DATA_DIR is created from the shipped image
// (db/embedded-image.ts) on Bun's threads meanwhile. Said first: it can take a moment.
let claim: DataDirClaim | undefined;
if (!config.databaseUrl) {
  const [{ claimDataDir, embeddedDatabaseLine }, { pgliteAssets }] = await Promise.all([import("./db/embedded-image"), import("./resources")]);
  // PGlite's wasm is compiled meanwhile too (resources.ts); a failure shows when the database opens.
  pgliteAssets().catch(() => {});
  const line = embeddedDatabaseLine(config.dataDir);
  logger.info(line.msg, line.fields);
  try {
    claim = claimDataDir(config.dataDir);
  } catch (error) {
    logger.error("database start-up failed", { error });
    await exit(1);
  }
}

// The rest of the service is loaded only now: a process that replaces itself above loads it once.
const [
  { sql },
  { createApp },
  { systemClock },
  { openDatabase },
  { startEmbeddedMaintenance },
  { Dispatcher },
  { databaseSignals },
  { SandboxGateway },
  { createGateway },
  { serveApp },
  { firstCredentials, nobodyCanSignIn },
  { Metrics },
  { startDailyReport },
  { startCounterFold },
] = await Promise.all([
  import("drizzle-orm"),
  import("./app"),
  import("./clock"),
  import("./db/client"),
  import("./db/embedded-maintenance"),
  import("./dispatch/dispatcher"),
  import("./dispatch/signals"),
  import("./gateway/sandbox"),
  import("./gateway/select"),
  import("./http/serve"),
  import("./ops/first-contact"),
  import("./ops/metrics"),
  import("./ops/report"),
  import("./stats/fold"),
]);

let database!: Database;
let migrationsApplied!: number;
/** How a new DATA_DIR was created: "image" (the shipped one) or "initdb"; undefined when it existed. */
let created: "image" | "initdb" | undefined;
try {
  database = await openDatabase(config, {
    claim,
    onImage: (use) => {
      created = use.image ? "image" : "initdb";
      // Without the shipped image (embedded-image.ts) a new DATA_DIR is created by initdb: slower, say why.
      if (!use.image) logger.warn("no usable embedded database image: running initdb (about 5 s)", { reason: use.reason });
    },
  });
  migrationsApplied = await database.migrate();
} catch (error) {
  // The error's message, code (ECONNREFUSED, a SQLSTATE) and cause (logger.ts, describeError).
  logger.error("database start-up failed", { error });
  await exit(1);
}
logger.info("database ready", {
  driver: database.kind,
  data_dir: config.databaseUrl ? undefined : config.dataDir,
  created,
  migrations_applied: migrationsApplied,
});

// PGlite has no autovacuum of its own: without it no table is ever analysed (embedded-maintenance.ts).
const stopMaintenance = startEmbeddedMaintenance(database, logger);
// PGlite's garbage is collected before it piles up (ops/memory.ts); PostgreSQL keeps JSC's defaults.
const stopMemoryGuard =
  database.kind === "pglite"
    ? startMemoryGuard({
        ...embeddedGuard,
        rss: () => process.memoryUsage.rss(),
        collect: () => Bun.gc(true),
        now: () => performance.now(),
        onCollect: (c) => logger.debug("full collection", { rss_mb: Math.round(c.rssBytes / 2 ** 20), pause_ms: Math.round(c.pauseMs), gap_ms: c.gapMs }),
      })
    : () => {};
const metrics = new Metrics(database, systemClock);
// The provider itself is kept: the outbox page reads the sandbox's memory, which the metrics wrapper hides.
const provider = createGateway(config);
const gateway = metrics.instrument(provider);
const dispatcher = config.worker
  ? new Dispatcher(database, gateway, systemClock, logger, {
      concurrency: config.sendConcurrency,
      gatewayConcurrency: config.gatewayConcurrency,
      claimBatch: config.claimBatch,
      leaseSeconds: config.leaseSeconds,
      sendTimeoutMs: config.providerTimeoutMs,
      retryDelaySeconds: config.retryDelaySeconds,
      tick: config.tick,
      onClaim: (count) => metrics.claimed(count),
      rate: config.providerRate,
    })
  : null;
metrics.watchDispatcher(() => dispatcher?.stats ?? null);
const signals = databaseSignals(database, logger, () => dispatcher);
let stopping = false;
const app = await createApp({ config, database, clock: systemClock, logger, signals, metrics, stopping: () => stopping, outbox: provider instanceof SandboxGateway && dispatcher ? provider : null, gateway });

let server!: ReturnType<typeof serveApp>;
try {
  server = serveApp(app, { port: config.port, hostname: config.host });
} catch (error) {
  if (!addressInUse(error)) throw error;
  await database.close().catch(() => {});
  await portInUse();
}
if (dispatcher) {
  await dispatcher.start();
  logger.info("dispatcher started", {
    gateway: gateway.name,
    concurrency: config.sendConcurrency,
    gateway_concurrency: config.gatewayConcurrency,
    max_http_requests: currentMaxHttpRequests(process.env),
    tick: config.tick,
  });
}
const stopReport = startDailyReport(database, systemClock, logger, config);
// Every process folds the statistics counters' deltas (drizzle/0007); folds take turns on a lock.
const stopFold = startCounterFold(database, logger);
// Before anything else awaits the database: a signal that came while a start-up query hung (the
// database cut off right after "listening") killed the process with the default action.
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
// A diagnostic, off unless HEAP_STATS_FILE is set (ops/heap-stats.ts; the soak uses it).
if (config.heapStatsFile) {
  const { installHeapStats } = await import("./ops/heap-stats");
  installHeapStats(config.heapStatsFile, (error) => logger.warn("writing heap stats failed", { error }));
}
const baseUrl = (config.publicUrl ?? `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${server.port}`).replace(/\/$/, "");
logger.info("listening", { url: baseUrl });
// The hints below query the database, which may not answer: they never hold up the start.
void startUpHints();

/** What a person at a fresh install needs to know to get in (never blocks the start). */
async function startUpHints(): Promise<void> {
  const noAccount = await database.rows<{ n: number }>(sql`select count(*)::int as n from users`).then((r) => r[0]?.n === 0, () => false);
  if (noAccount) {
    // A fresh install: say where the first (admin) account is made (SPEC §9).
    if (config.registration === "open") logger.info("no account yet: open the register page to create the first (admin) account", { url: `${baseUrl}/register` });
    else logger.warn("no account yet and REGISTRATION=closed: nobody can sign in until an account exists", {});
  }
  if (await nobodyCanSignIn(database, config.adminApiKey).catch(() => false)) {
    // Once per start, while nobody can sign in; plain text on stderr, meant for a person.
    console.error(firstCredentials(baseUrl, config.registration === "open"));
  }
}

async function shutdown(signal: string) {
  if (stopping) {
    // A second signal: the operator does not want to wait; the leases cover what is unwritten.
    logger.warn("second signal: exiting now", { signal });
    await exit(1);
  }
  stopping = true;
  logger.info("shutting down", { signal });
  // SPEC §6: exit within LEASE_SECONDS whatever hangs (a database that stopped answering makes
  // every statement wait); messages whose results were not written are taken over when their
  // lease runs out. The dispatcher's own stop() is bounded at 0.9 of the lease; this is the backstop.
  const deadlineMs = Math.round(config.leaseSeconds * 950);
  setTimeout(() => {
    logger.error("shutdown did not finish in time; exiting", { deadline_ms: deadlineMs });
    void exit(1);
  }, deadlineMs).unref();
  // Stop taking requests, then let in-flight sends finish (or hand them back) within the lease.
  stopReport?.();
  stopFold();
  stopMemoryGuard();
  const serverStopped = server.stop();
  await dispatcher?.stop();
  await serverStopped;
  await app.close();
  await stopMaintenance();
  await database.close();
  logger.info("stopped");
  await exit(0);
}
