/**
 * The database: embedded PGlite when DATABASE_URL is unset, PostgreSQL through postgres.js when it is
 * set (SPEC §2). Both are wrapped in Drizzle; the few places that need more than Drizzle's builder
 * (raw statements in dispatch/, LISTEN/NOTIFY, migrations) go through this small interface so that
 * the rest of the code never asks which driver it runs on.
 */
import { PGlite } from "@electric-sql/pglite";
import { sql, type SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { pgliteAssets } from "../resources";
import * as schema from "./schema";
import { claimDataDir, creationDone, type DataDirClaim, type ImageUse, migrationsFolder } from "./embedded-image";
import { deadlined, outsideDeadline } from "./deadline";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** Anything that runs Drizzle statements: the database or an open transaction. */
export type Executor = Pick<Db, "execute">;

/**
 * Runs one raw statement on a database or transaction and returns its rows (postgres.js answers
 * with an array, PGlite with `{ rows }`). Timestamps come back as text on both drivers: select
 * instants as epoch milliseconds where the caller needs them.
 */
export async function rowsOf<T = Record<string, unknown>>(executor: Executor, query: SQL): Promise<T[]> {
  const result = (await executor.execute(query)) as unknown as T[] | { rows: T[] };
  return Array.isArray(result) ? result : result.rows;
}

export { migrationsFolder };
export type { ImageUse };

/**
 * How many migrations drizzle/ holds, read from the journal the migrator itself reads (a JSON
 * import of it would turn into a file path in the compiled executable, which embeds the file).
 */
function migrationCount(folder = migrationsFolder): number {
  const journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, "utf8")) as { entries: unknown[] };
  return journal.entries.length;
}

export interface Database {
  readonly kind: "pglite" | "postgres";
  readonly db: Db;
  /**
   * The handle for client writes (create, update, delete, import). On PostgreSQL a pool of its own:
   * a client write waits while a mailing is being planned (LOCK TABLE clients IN SHARE MODE,
   * plan.ts), holding its connection; with one shared pool a burst of them would take every
   * connection and hold reads, statistics and the dispatcher too. On PGlite the same as `db`.
   */
  readonly writes: Db;
  /** Runs one statement built with Drizzle's `sql` and returns its rows. */
  rows<T = Record<string, unknown>>(query: SQL): Promise<T[]>;
  /** Applies pending migrations (safe when several processes start at once); returns how many. */
  migrate(): Promise<number>;
  /** True when every migration in drizzle/ has been applied. */
  migrationsApplied(): Promise<boolean>;
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

const migrationLockKey = 0x6e6f7469; // "noti": one advisory lock for migrations

async function appliedCount(database: Database): Promise<number> {
  try {
    const [row] = await database.rows<{ n: number }>(
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    );
    return row?.n ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Drizzle runs every statement through postgres.js's `unsafe(…, { prepare: false })` unless the
 * query was built with `.prepare(name)`, so PostgreSQL parsed, analysed and planned each statement
 * anew: about 30 % of a backend's CPU serving `GET /api/v1/clients/{id}`, and 0.6–2.3 ms of planning
 * per dispatcher statement (issue 4). This wrapper turns on postgres.js's named prepared statements
 * (one per distinct SQL text and connection) for the first `limit` distinct texts a process sees;
 * texts beyond that (statements built with a varying shape) stay unprepared, so the number of
 * statements each connection keeps is bounded.
 */
export function preparing(client: postgres.Sql, limit = 500): postgres.Sql {
  const texts = new Set<string>();
  const prepare = (query: string) => {
    if (texts.has(query)) return true;
    if (texts.size >= limit) return false;
    texts.add(query);
    return true;
  };
  const wrap = (sql: postgres.Sql): postgres.Sql =>
    new Proxy(sql, {
      get(target, property, receiver) {
        if (property === "unsafe") {
          return (query: string, params?: unknown[], options?: { prepare?: boolean }) =>
            target.unsafe(query, params as never, { ...options, prepare: options?.prepare || prepare(query) });
        }
        if (property === "begin" || property === "savepoint") {
          return (...args: unknown[]) => {
            const body = args.at(-1) as (tx: postgres.Sql) => unknown;
            args[args.length - 1] = (tx: postgres.Sql) => body(wrap(tx));
            return (Reflect.get(target, property, receiver) as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
  return wrap(client);
}

export type PostgresOptions = {
  max?: number;
  writeMax?: number;
  /** a connection attempt gives up after this (default 2 s; postgres.js's own default is 30 s) */
  connectTimeoutMs?: number;
  /** PostgreSQL cancels a statement, or ends a transaction left idle, after this (default 30 s) */
  statementTimeoutMs?: number;
};

/**
 * Bounds on waiting for the database (issue 14 item 2). The server enforces the statement and
 * idle-in-transaction timeouts itself, so a request the service gave up on is also given up by
 * PostgreSQL: its transaction rolls back instead of committing after the caller got a 503.
 */
function bounds(options: PostgresOptions) {
  const statementTimeout = options.statementTimeoutMs ?? 30_000;
  return {
    connect_timeout: (options.connectTimeoutMs ?? 2_000) / 1000,
    // postgres.js waits before each new connection attempt of a pool for (0.5–1) × 3^failures / 100 s,
    // up to 20 s, with the failures counted pool-wide: after a few seconds of outage a request (or the
    // dispatcher's result write) waited up to 20 s for an attempt, during the outage and after it.
    // Capped at 0.5 s: refused connections are cheap, and the service notices the server's return.
    backoff: (failures: number) => Math.min(0.01 * 2 ** failures, 0.5),
    connection: {
      statement_timeout: statementTimeout,
      idle_in_transaction_session_timeout: statementTimeout,
    } as Record<string, number>,
  };
}

/** Opens PostgreSQL through postgres.js. */
export function openPostgres(url: string, options: PostgresOptions = {}): Database {
  const bounded = bounds(options);
  const client = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connect_timeout: bounded.connect_timeout,
    backoff: bounded.backoff,
    connection: { application_name: "notification-service", ...bounded.connection },
  });
  const db = drizzlePostgres({ client: deadlined(preparing(client)), schema }) as unknown as Db;
  // Opened on demand and closed when idle: most of the time it holds a connection or two.
  const writesClient = postgres(url, {
    max: options.writeMax ?? options.max ?? 10,
    idle_timeout: 30,
    onnotice: () => {},
    connect_timeout: bounded.connect_timeout,
    backoff: bounded.backoff,
    connection: { application_name: "notification-service (client writes)", ...bounded.connection },
  });
  const writes = drizzlePostgres({ client: deadlined(preparing(writesClient)), schema }) as unknown as Db;
  const database: Database = {
    kind: "postgres",
    db,
    writes,
    rows: (query) => rowsOf(db, query),
    async migrate() {
      // Several processes may start at once on one database: the advisory lock makes the second
      // wait until the first has migrated, after which it finds nothing to apply.
      // A client of one connection, so that the lock and the migration share a session.
      const single = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await single`select pg_advisory_lock(${migrationLockKey})`;
        const before = await appliedCount(database);
        await migratePostgres(drizzlePostgres({ client: single }), { migrationsFolder });
        await single`select pg_advisory_unlock(${migrationLockKey})`;
        return (await appliedCount(database)) - before;
      } finally {
        await single.end({ timeout: 5 });
      }
    },
    async migrationsApplied() {
      return (await appliedCount(database)) >= migrationCount();
    },
    async listen(channel, onMessage) {
      // postgres.js keeps trying to (re)connect its LISTEN connection while the server is away, and a
      // new listen() waits for that without end: give up after the connect timeout (callers fall
      // back to polling), and drop the subscription should it still come through later.
      // Notifications arrive in the async context the LISTEN connection was opened in: when a request
      // opened it (the open-mailings cache's first read), a dispatcher's wake would otherwise run
      // under that request's deadline while it lasts.
      const pending = client.listen(channel, (payload) => outsideDeadline(() => onMessage(payload)));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          pending.then((sub) => sub.unlisten(), () => {}).catch(() => {});
          reject(Object.assign(new Error(`LISTEN ${channel}: no connection within ${bounded.connect_timeout * 1000 + 1000} ms`), { code: "CONNECT_TIMEOUT" }));
        }, bounded.connect_timeout * 1000 + 1000);
      });
      try {
        const sub = await Promise.race([pending, late]);
        return () => sub.unlisten();
      } finally {
        clearTimeout(timer);
      }
    },
    async notify(channel, payload) {
      await client.notify(channel, payload);
    },
    async close() {
      await Promise.all([client.end({ timeout: 5 }), writesClient.end({ timeout: 5 })]);
    },
  };
  return database;
}

/**
 * PostgreSQL settings of the embedded database (issue 16, target 3), after PGlite's own start-up
 * parameters (which a `startParams` option replaces, so they are repeated):
 * - random_page_cost 1.1 (PostgreSQL's default is 4, for spinning disks): the data is in PGlite's
 *   buffers or the page cache. With 4, a claim of 500 due messages joined them to `messages` and
 *   `clients` by reading both tables whole (100,000 rows each: 4.8 s in WASM on a loaded machine)
 *   instead of 500 index lookups each (0.44 s, same run).
 * - shared_buffers 16 MB (default 128 MB): the buffers live in PGlite's WASM memory, which grows as
 *   they fill and never shrinks; pages beyond them stay in the kernel's page cache, outside RSS.
 *   16 instead of 32 MB: RSS idle 188 instead of 206 MB, no CPU per send cost measured in a
 *   100,000-client mailing (bench/NOTES.md, 2026-11-30, "Embedded RSS ≤ 300 MB").
 */
export const embeddedSettings: Record<string, string> = {
  random_page_cost: "1.1",
  shared_buffers: "16MB",
};

export function embeddedStartParams(): string[] {
  return [...PGlite.defaultStartParams, ...Object.entries(embeddedSettings).flatMap(([name, value]) => ["-c", `${name}=${value}`])];
}

/**
 * A PGlite instance on `dataDir` (null: in memory) with the embedded settings, once `created` (the
 * claim's extraction of the image into a new directory, embedded-image.ts) has settled: about
 * 0.1–0.5 s instead of initdb's 4.5 s and its 950 MB peak. Without a usable image PGlite runs
 * initdb inside a second instance and the WASM memory of both stays reachable from the instance it
 * returns (measured: 747 MB RSS after the first open against 266 MB when reopening), so that first
 * open only creates the cluster; it is closed and the directory opened again.
 */
async function openEmbedded(dataDir: string | null, created: Promise<ImageUse | null>, onImage: (use: ImageUse) => void): Promise<PGlite> {
  const assets = await pgliteAssets();
  const options = { ...assets, startParams: embeddedStartParams() };
  const use = await created;
  if (use) onImage(use);
  if (dataDir && use && !use.image) {
    const creating = new PGlite(dataDir, options);
    await creating.waitReady;
    await creating.close();
    creationDone(dataDir);
    Bun.gc(true);
  }
  const client = dataDir ? new PGlite(dataDir, options) : new PGlite(options);
  await client.waitReady;
  return client;
}

/**
 * Opens embedded PGlite, in `dataDir` or (null) in memory, or wraps `client`, an instance the
 * caller opened (tests start theirs from a dump of a migrated one, and decide what closing means).
 * `claim`: the caller's claim of `dataDir` (main.ts claims it early), else it is claimed here.
 */
export async function openPglite(
  dataDir: string | null,
  options: {
    client?: PGlite;
    claim?: DataDirClaim;
    onImage?: (use: ImageUse) => void;
    /** drizzle/ unless given (tests: a folder with a migration more than the image holds) */
    migrationsFolder?: string;
  } = {},
): Promise<Database> {
  const folder = options.migrationsFolder ?? migrationsFolder;
  const claim = dataDir ? (options.claim ?? claimDataDir(dataDir, folder)) : null;
  let client: PGlite;
  try {
    client = options.client ?? (await openEmbedded(dataDir, claim?.created ?? Promise.resolve(null), options.onImage ?? (() => {})));
  } catch (error) {
    claim?.unlock();
    throw error;
  }
  const unlock = claim ? claim.unlock : () => {};
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  const database: Database = {
    kind: "pglite",
    db,
    writes: db,
    rows: (query) => rowsOf(db, query),
    async migrate() {
      const before = await appliedCount(database);
      await migratePglite(drizzlePglite({ client }), { migrationsFolder: folder });
      return (await appliedCount(database)) - before;
    },
    async migrationsApplied() {
      return (await appliedCount(database)) >= migrationCount(folder);
    },
    async listen(channel, onMessage) {
      return client.listen(channel, onMessage);
    },
    async notify(channel, payload) {
      await client.query("select pg_notify($1, $2)", [channel, payload]);
    },
    async close() {
      await client.close();
      unlock();
    },
  };
  return database;
}

/** Opens the database the configuration names. */
export async function openDatabase(config: {
  databaseUrl: string | null;
  dataDir: string;
  dbConnectTimeoutMs?: number;
  dbStatementTimeoutMs?: number;
}, embedded: { claim?: DataDirClaim; onImage?: (use: ImageUse) => void } = {}): Promise<Database> {
  return config.databaseUrl
    ? openPostgres(config.databaseUrl, { connectTimeoutMs: config.dbConnectTimeoutMs, statementTimeoutMs: config.dbStatementTimeoutMs })
    : openPglite(config.dataDir, embedded);
}
