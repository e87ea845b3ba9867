/**
 * Databases of the benchmarks: a fresh PostgreSQL database per bench on the server of DATABASE_URL
 * (default the local one), dropped afterwards, and the small set-based seeds the dispatch benches
 * share. The 10M-row fill of the statistics, metrics and pages suites is in fill.ts.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { type Database, openPostgres } from "../../src/db/client";
import { databaseMarker } from "./cli";

process.env.DATABASE_URL ||= "postgres://postgres@127.0.0.1:5432/postgres";
export const databaseUrl = process.env.DATABASE_URL;

export type BenchDatabase = {
  database: Database;
  url: string;
  name: string;
  /** a raw postgres.js client on the bench database (one connection, so session settings stick) */
  sql: postgres.Sql;
  drop(): Promise<void>;
  /** closes the connections but leaves the database (for EXPLAIN afterwards; drop it by hand) */
  keep(): Promise<void>;
};

/**
 * Creates a new database on the server of DATABASE_URL; `migrate` (default) applies the service's
 * schema; `settings` are per-database settings (experiments such as synchronous_commit=off).
 */
export async function freshPostgres(
  options: { migrate?: boolean; max?: number; settings?: Record<string, string> } = {},
): Promise<BenchDatabase> {
  const name = `nsb_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  // Tell the parent (bench/suites/dispatch.ts), so it can drop the database if it has to kill this process.
  if (process.env.BENCH_CHILD) process.stdout.write(`${databaseMarker}${name}\n`);
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    if (!/^[a-z_]+$/.test(key)) throw new Error(`bad setting name ${key}`);
    await admin.unsafe(`alter database ${name} set ${key} = '${value.replace(/'/g, "''")}'`);
  }
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), { max: options.max ?? 10 });
  if (options.migrate !== false) await database.migrate();
  const raw = postgres(url.toString(), { max: 1, onnotice: () => {} });
  const close = async () => {
    await raw.end({ timeout: 5 }).catch(() => {});
    await database.close().catch(() => {});
  };
  return {
    database,
    url: url.toString(),
    name,
    sql: raw,
    async drop() {
      await close();
      await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await admin.end({ timeout: 5 });
    },
    async keep() {
      await close();
      await admin.end({ timeout: 5 });
      console.log(`kept database: ${url}`);
    },
  };
}

/** The single row of a query on the raw client (throws if there is none). */
export async function one<T extends Record<string, unknown>>(db: BenchDatabase, query: string, params: unknown[] = []): Promise<T> {
  const rows = await db.sql.unsafe<T[]>(query, params as never[]);
  const row = rows[0];
  if (!row) throw new Error(`no row from: ${query}`);
  return row;
}

/** N clients (phones 7000000001…) and one open mailing, set-based; returns the mailing id. */
export async function seedClientsAndMailing(database: Database, n: number, text = "Bench message"): Promise<number> {
  await seedClients(database, n);
  return insertMailing(database, text);
}

/** N clients (phones 7000000001…, zone UTC, tag bench), set-based. */
export async function seedClients(database: Database, n: number): Promise<void> {
  await database.rows(sql`
    insert into clients (phone_number, operator_code, tag, timezone)
    select '7' || lpad(g::text, 10, '0'), '900', 'bench', 'UTC' from generate_series(1, ${n}::int) g`);
}

/** One mailing row, open from 2020 to 2099 everywhere, inserted directly. */
export async function insertMailing(database: Database, text: string): Promise<number> {
  const [m] = await database.rows<{ id: number }>(sql`
    insert into mailings (text, start_time, end_time, starts_at, ends_at)
    values (${text}, '2020-01-01T00:00:00', '2099-12-31T23:59:59', '2019-12-31T10:00:00Z', '2100-01-01T11:59:59Z')
    returning id`);
  return m!.id;
}

/**
 * N messages of the mailing, one per client, status `scheduled`, due in the past (in id order, 1 ms
 * apart, all before now), expiring in 2100.
 */
export async function seedDueMessages(database: Database, mailingId: number, n: number): Promise<void> {
  await database.rows(sql`
    insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
    select ${mailingId}, c.id, c.phone_number, 'scheduled',
      now() - interval '1 hour' + c.id * interval '1 millisecond', '2100-01-01T00:00:00Z',
      now() - interval '1 hour' + c.id * interval '1 millisecond'
    from clients c where c.id <= ${n}::int order by c.id`);
}

/** Statuses of all messages, as a map. */
export async function statusCounts(database: Database): Promise<Record<string, number>> {
  const rows = await database.rows<{ status: string; n: number }>(
    sql`select status, count(*)::int as n from messages group by status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
