/**
 * Real databases for tests. Every caller gets its own: an in-memory PGlite always, and, when
 * DATABASE_URL is set, a PostgreSQL database of its own on that server (dropped afterwards).
 *
 * Starting PGlite (its initdb) takes 1.5–3 s here and migrating a PostgreSQL database about 0.3 s,
 * once per test that was most of the suite's time. So each backend is migrated once per `bun test`
 * process (test files share the module) and every database is a copy of that template: PGlite
 * starts from a dump of the migrated one (~0.25 s), PostgreSQL uses `CREATE DATABASE … TEMPLATE`
 * (~0.07 s). A copy is a whole database, as isolated as a freshly migrated one.
 */
import type { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { type Database, openPglite, openPostgres } from "../../src/db/client";

export type Backend = "pglite" | "postgres";

/** The backends this run tests against: PGlite always, PostgreSQL when DATABASE_URL is set. */
export function backends(): Backend[] {
  return process.env.DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];
}

export type TestDatabase = { database: Database; url: string | null; drop(): Promise<void> };

/** A migrated, empty database of the given backend. */
export async function freshDatabase(backend: Backend, options: { max?: number } = {}): Promise<TestDatabase> {
  if (backend === "pglite") {
    const database = await openPglite(null, { loadDataDir: await pgliteTemplate() });
    return { database, url: null, drop: () => database.close() };
  }
  const template = await postgresTemplate();
  const name = `nst_test_${runId}_${++created}`;
  await admin().unsafe(`create database ${name} template ${template}`);
  const url = databaseUrl(name);
  const database = openPostgres(url, options);
  return {
    database,
    url,
    async drop() {
      await database.close().catch(() => {});
      await admin().unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
    },
  };
}

/**
 * How many sessions on this PostgreSQL database wait for a lock: tests wait for a statement to be
 * blocked (by a transaction they hold open) with this instead of sleeping.
 */
export async function sessionsWaitingForLocks(database: Database): Promise<number> {
  const [row] = await database.rows<{ n: number }>(
    sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
  );
  return row?.n ?? 0;
}

/**
 * Drops this run's PostgreSQL template; called once after all test files (tests/support/setup.ts,
 * preloaded by bunfig.toml).
 */
export async function dropTemplates(): Promise<void> {
  if (!postgresTemplateName) return;
  const name = await postgresTemplateName.catch(() => null);
  if (name) await admin().unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
  await adminClient?.end({ timeout: 5 });
  adminClient = null;
}

// Unique per run, so that runs in parallel (several engineers share one server) never share a template.
const runId = `${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
let created = 0;

let pgliteDump: Promise<Blob> | null = null;

/** The data directory of a migrated PGlite, dumped once per process. */
function pgliteTemplate(): Promise<Blob> {
  pgliteDump ??= (async () => {
    const template = await openPglite(null);
    try {
      await template.migrate();
      return await (template.db as unknown as { $client: PGlite }).$client.dumpDataDir("none");
    } finally {
      await template.close();
    }
  })();
  return pgliteDump;
}

let postgresTemplateName: Promise<string> | null = null;

/** The name of this run's migrated template database, created on first use. */
function postgresTemplate(): Promise<string> {
  postgresTemplateName ??= (async () => {
    const name = `nst_template_${runId}`;
    await dropLeftTemplates();
    await admin().unsafe(`create database ${name}`);
    // Closed before the first copy: CREATE DATABASE … TEMPLATE refuses a source with sessions.
    const database = openPostgres(databaseUrl(name), { max: 1 });
    try {
      await database.migrate();
    } finally {
      await database.close();
    }
    return name;
  })();
  return postgresTemplateName;
}

/**
 * Drops the templates of runs that were killed before their cleanup (named by their start time, see
 * runId) once they are a day old; a template still being copied is in use and stays.
 */
async function dropLeftTemplates(): Promise<void> {
  const rows = await admin()<{ datname: string }[]>`select datname from pg_database where starts_with(datname, 'nst_template_')`;
  for (const { datname } of rows) {
    const started = parseInt(datname.split("_")[2] ?? "", 36);
    if (Number.isFinite(started) && Date.now() - started > 86_400_000) {
      await admin().unsafe(`drop database if exists ${datname}`).catch(() => {});
    }
  }
}

let adminClient: postgres.Sql | null = null;

/** One connection for CREATE/DROP DATABASE; it closes itself when idle, so it never holds the process. */
function admin(): postgres.Sql {
  adminClient ??= postgres(process.env.DATABASE_URL!, { max: 1, idle_timeout: 2, onnotice: () => {} });
  return adminClient;
}

function databaseUrl(name: string): string {
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}
