/**
 * Real databases for tests. Every caller gets one of its own: an in-memory PGlite always, and, when
 * DATABASE_URL is set, a PostgreSQL database on that server (dropped after the run).
 *
 * Starting PGlite (its initdb) takes 1.5–3 s here and migrating a PostgreSQL database about 0.3 s;
 * once per test, that was most of the suite's time. So each backend is migrated once per `bun test`
 * process (test files share this module) into a template, and a database handed out is either a
 * copy of it (PGlite from a dump, ~0.25 s unloaded; PostgreSQL with CREATE DATABASE … TEMPLATE,
 * ~0.1–0.3 s) or one that an earlier test gave back and that was reset (recycle.ts, a few ms).
 */
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { readFileSync } from "node:fs";
import { type Database, migrationsFolder, openPglite, openPostgres } from "../../src/db/client";
import { imageTarball, imageUnusable, installedPgliteVersion, migrationsOf, readImageManifest } from "../../src/db/embedded-image";
import { resourcePath } from "../../src/resources";
import { adopt, currentOwner } from "./lifetime";
import { type Profile, type Run, profile, reset, revocable } from "./recycle";

export type Backend = "pglite" | "postgres";

/** The backends this run tests against: PGlite always, PostgreSQL when DATABASE_URL is set. */
export function backends(): Backend[] {
  return process.env.DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];
}

export type TestDatabase = { database: Database; url: string | null; drop(): Promise<void> };

/** A migrated, empty database of the given backend, for the caller alone until `drop()`. */
export async function freshDatabase(backend: Backend, options: { max?: number } = {}): Promise<TestDatabase> {
  // Taken before the set-up: a test that times out during it must not get (or leak) the database.
  const owner = currentOwner();
  const made = await (backend === "pglite" ? pgliteDatabase() : postgresDatabase(options));
  return { ...made, drop: await adopt(owner, made.drop) };
}

/**
 * Builds the templates this run needs. Run while the first test file that uses databases loads
 * (bottom of this file), outside every test's and hook's limit: under a load of ~30 on two cores
 * PGlite's initdb and the migrations took over 60 s, and the first test (or a beforeAll) that built
 * them lazily timed out. A hang still fails the file, after 10 minutes.
 */
async function warmTemplates(): Promise<void> {
  await pgliteTemplateReady();
  if (process.env.DATABASE_URL) await postgresTemplateReady();
}

async function withinLimit<T>(work: Promise<T>, limitMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${limitMs} ms`)), limitMs);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
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
 * Drops this run's PostgreSQL databases (the template and the spares); called once after all test
 * files (tests/support/setup.ts, preloaded by bunfig.toml).
 */
export async function dropTemplates(): Promise<void> {
  for (const client of sparePglites.splice(0)) await client.close().catch(() => {});
  if (!postgresTemplate) return;
  const template = await postgresTemplate.catch(() => null);
  const names = [...sparePostgres.splice(0), ...handedOut, ...(template ? [template.name] : [])];
  handedOut.clear();
  for (const name of names) {
    await admin().unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
  }
  await adminClient?.end({ timeout: 5 });
  adminClient = null;
}

// Unique per run, so that runs in parallel (several engineers share one server) never share a
// database; it starts with the run's start time (see dropLeftDatabases).
const runId = `${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
let created = 0;
/** Clean databases given back, at most this many per backend (each PGlite holds ~100 MB). */
const maxSpares = 2;

// ---- PGlite

type PgliteTemplate = Profile & { dump: Blob };
let pgliteTemplate: Promise<PgliteTemplate> | null = null;
const sparePglites: PGlite[] = [];

const imageUsable = () => imageUnusable(readImageManifest(), migrationsOf(migrationsFolder), installedPgliteVersion()) === null;
const imageBlob = () => new Blob([readFileSync(resourcePath(imageTarball))], { type: "application/x-gzip" });

function pgliteTemplateReady(): Promise<PgliteTemplate> {
  return (pgliteTemplate ??= (async () => {
    // From the shipped image when it is usable (src/db/embedded-image.ts), as a new DATA_DIR is: no
    // initdb (seconds, a minute under load); whatever the image lacks is migrated here.
    const client = imageUsable() ? new PGlite({ loadDataDir: imageBlob() }) : new PGlite();
    try {
      await (await openPglite(null, { client })).migrate();
      return { ...(await profile(pgliteRun(client))), dump: await client.dumpDataDir("none") };
    } finally {
      await client.close();
    }
  })());
}

async function pgliteDatabase(): Promise<TestDatabase> {
  const template = await pgliteTemplateReady();
  const client = sparePglites.pop() ?? new PGlite({ loadDataDir: template.dump });
  // The test's handle dies at drop(): anything of the test still running then fails as on a closed database.
  const handle = revocable(client);
  const database = await openPglite(null, { client: handle.client });
  return {
    database,
    url: null,
    drop: once(async () => {
      await handle.revoke();
      if (sparePglites.length < maxSpares && (await reset(pgliteRun(client), template, { pglite: true }))) sparePglites.push(client);
      else await client.close().catch(() => {});
    }),
  };
}

function pgliteRun(client: PGlite): Run {
  return async (text) => (await client.query<Record<string, unknown>>(text)).rows;
}

// ---- PostgreSQL

type PostgresTemplate = Profile & { name: string };
let postgresTemplate: Promise<PostgresTemplate> | null = null;
const sparePostgres: string[] = [];
/** given to a test and not back yet (a test that failed before its drop() is cleaned up at the end) */
const handedOut = new Set<string>();

function postgresTemplateReady(): Promise<PostgresTemplate> {
  return (postgresTemplate ??= (async () => {
    const name = `nst_template_${runId}`;
    await dropLeftDatabases();
    await admin().unsafe(`create database ${name}`);
    // Closed before the first copy: CREATE DATABASE … TEMPLATE refuses a source with sessions.
    const database = openPostgres(databaseUrl(name), { max: 1 });
    try {
      await database.migrate();
      await database.close();
      return { ...(await onDatabase(name, profile)), name };
    } catch (error) {
      await database.close();
      await admin().unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      throw error;
    }
  })());
}

async function postgresDatabase(options: { max?: number }): Promise<TestDatabase> {
  const template = await postgresTemplateReady();
  let name = sparePostgres.pop();
  if (!name) {
    name = `nst_test_${runId}_${++created}`;
    await admin().unsafe(`create database ${name} template ${template.name}`);
  }
  handedOut.add(name);
  const url = databaseUrl(name);
  const database = openPostgres(url, options);
  return {
    database,
    url,
    drop: once(async () => {
      await database.close().catch(() => {});
      handedOut.delete(name);
      if (sparePostgres.length >= maxSpares) {
        await admin().unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
        return;
      }
      // Renamed before the reset, so that no pool or process of the test can reconnect while it runs
      // (or between the truncate and the hand-out): they find no database, as if dropped. A session
      // still on it makes the rename fail (after PostgreSQL's 5 s wait), and the database is dropped.
      const renamed = `nst_test_${runId}_${++created}`;
      const moved = await admin()
        .unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}'`)
        .then(() => admin().unsafe(`alter database ${name} rename to ${renamed}`))
        .then(() => true, () => false);
      if (!moved) {
        await admin().unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
        return;
      }
      const clean = await onDatabase(renamed, (run) => reset(run, template, { pglite: false })).catch(() => false);
      if (clean) sparePostgres.push(renamed);
      else await admin().unsafe(`drop database if exists ${renamed} with (force)`).catch(() => {});
    }),
  };
}

/** Runs `work` on a connection of its own to database `name`. */
async function onDatabase<T>(name: string, work: (run: Run) => Promise<T>): Promise<T> {
  const connection = postgres(databaseUrl(name), { max: 1, onnotice: () => {} });
  try {
    return await work((text) => connection.unsafe(text) as Promise<Record<string, unknown>[]>);
  } finally {
    await connection.end({ timeout: 5 });
  }
}

/**
 * Drops what runs killed before their cleanup left behind (databases named after their start
 * time) once it is a day old; a database still in use stays (no FORCE).
 */
async function dropLeftDatabases(): Promise<void> {
  const rows = await admin()<{ datname: string }[]>`
    select datname from pg_database where starts_with(datname, 'nst_template_') or starts_with(datname, 'nst_test_')`;
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

/** `drop()` twice gives a database back once (twice would hand it to two tests). */
function once(action: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= action());
}

function databaseUrl(name: string): string {
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}

// For the preload (tests/support/setup.ts), which does not import this module: a run whose files
// never load it builds no template.
(globalThis as { [key: symbol]: unknown })[Symbol.for("nst.test-databases")] = { dropTemplates };

await withinLimit(warmTemplates(), 600_000, "building the test database templates");
