/**
 * Start-up: config → database → migrations → HTTP server + dispatcher; SIGTERM/SIGINT shut down.
 * The only module that touches the process (env, signals, listening).
 */
import { sql } from "drizzle-orm";
import { createApp } from "./app";
import { systemClock } from "./clock";
import { type Config, ConfigError, loadConfig } from "./config";
import { type Database, openDatabase } from "./db/client";
import { Dispatcher } from "./dispatch/dispatcher";
import { databaseSignals } from "./dispatch/signals";
import { SandboxGateway } from "./gateway/sandbox";
import { createGateway } from "./gateway/select";
import { serveApp } from "./http/serve";
import { createLogger } from "./ops/logger";

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
let database: Database;
let migrationsApplied: number;
try {
  database = await openDatabase(config);
  migrationsApplied = await database.migrate();
} catch (error) {
  logger.error("database start-up failed", { error: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}
logger.info("database ready", {
  driver: database.kind,
  data_dir: config.databaseUrl ? undefined : config.dataDir,
  migrations_applied: migrationsApplied,
});

const gateway = createGateway(config);
const dispatcher = config.worker
  ? new Dispatcher(database, gateway, systemClock, logger, {
      concurrency: config.sendConcurrency,
      gatewayConcurrency: config.gatewayConcurrency,
      claimBatch: config.claimBatch,
      leaseSeconds: config.leaseSeconds,
      sendTimeoutMs: config.providerTimeoutMs,
      retryDelaySeconds: config.retryDelaySeconds,
      tick: config.tick,
    })
  : null;
const signals = databaseSignals(database, logger, () => dispatcher);
const app = await createApp({ config, database, clock: systemClock, logger, signals, outbox: gateway instanceof SandboxGateway && dispatcher ? gateway : null });

const server = serveApp(app, { port: config.port, hostname: config.host });
if (dispatcher) {
  await dispatcher.start();
  logger.info("dispatcher started", { gateway: gateway.name, concurrency: config.sendConcurrency, gateway_concurrency: config.gatewayConcurrency, tick: config.tick });
}
const url = config.publicUrl ?? `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${server.port}`;
logger.info("listening", { url });
if ((await database.rows<{ n: number }>(sql`select count(*)::int as n from users`))[0]?.n === 0) {
  // A fresh install: say where the first (admin) account is made (SPEC §9).
  if (config.registration === "open") logger.info("no account yet: open the register page to create the first (admin) account", { url: `${url.replace(/\/$/, "")}/register` });
  else logger.warn("no account yet and REGISTRATION=closed: nobody can sign in until an account exists", {});
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info("shutting down", { signal });
  // Stop taking requests, then let in-flight sends finish (or hand them back) within the lease.
  const serverStopped = server.stop();
  await dispatcher?.stop();
  await serverStopped;
  await database.close();
  logger.info("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
