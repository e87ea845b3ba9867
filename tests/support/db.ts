/**
 * Real databases for tests. Every test file gets its own: an in-memory PGlite always, and, when
 * DATABASE_URL is set, a freshly created PostgreSQL database on that server (dropped afterwards).
 */
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
    const database = await openPglite(null);
    await database.migrate();
    return { database, url: null, drop: () => database.close() };
  }
  const base = process.env.DATABASE_URL!;
  const name = `nst_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), options);
  await database.migrate();
  return {
    database,
    url: url.toString(),
    async drop() {
      await database.close().catch(() => {});
      await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await admin.end({ timeout: 5 });
    },
  };
}
