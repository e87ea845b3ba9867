/**
 * Giving a test database back for the next test, as isolated as a fresh copy of the template:
 *
 * - what the test still holds dies: its PGlite handle is revoked (queries then fail as on a closed
 *   database, its LISTENs are removed); on PostgreSQL its pools are closed and any session left on
 *   the database (another pool, a worker process) is terminated, taking its locks and LISTENs along,
 *   and the database is renamed, so that a pool left open cannot reconnect to it;
 * - session state goes (PGlite has one session: an open transaction, settings, prepared statements,
 *   temporary tables);
 * - the schema must still be the template's (a fingerprint of the catalogs: schemas, tables, columns,
 *   defaults, constraints, triggers, functions, sequences, database settings, applied migrations);
 *   a test that changed it loses the database, and the next one gets a fresh copy;
 * - every table with rows is truncated (only those: a TRUNCATE makes new files for a table and its
 *   indexes, 0.1–0.3 s for all six tables on this loaded machine) and every sequence set back to its
 *   start, so ids start at 1 again. A template whose migrations left rows in a table is never
 *   recycled (a truncate would lose them);
 * - the reset is checked at its end (every table empty); a reset that failed part-way or found rows
 *   again loses the database. A spare is handed out only after its reset has finished.
 */
import type { PGlite } from "@electric-sql/pglite";

/** Runs one SQL statement and returns its rows. */
export type Run = (text: string) => Promise<Record<string, unknown>[]>;

/** What a recycled database is compared with and reset to. */
export type Profile = {
  fingerprint: string;
  /** one statement naming the tables that have rows */
  nonEmpty: string;
  /** one statement setting every sequence back to its start ("" when there is none) */
  restartSequences: string;
  recyclable: boolean;
};

const userNamespaces = `select oid from pg_namespace where nspname !~ '^pg_' and nspname <> 'information_schema'`;
/** the schemas whose tables hold the application's rows (drizzle's holds the applied migrations) */
const dataSchemas = `schemaname !~ '^pg_' and schemaname not in ('information_schema', 'drizzle')`;

const fingerprintQuery = `
  select md5(string_agg(item, '|' order by item)) as fingerprint from (
    select 'n ' || nspname as item from pg_namespace where oid in (${userNamespaces})
    union all
    select 'c ' || oid || ' ' || relname || ' ' || relkind::text || ' ' || relpersistence::text || ' ' || relrowsecurity
      from pg_class where relnamespace in (${userNamespaces})
    union all
    select 'a ' || attrelid || ' ' || attname || ' ' || atttypid || ' ' || attnotnull || ' ' || attisdropped
      from pg_attribute where attnum > 0 and attrelid in (select oid from pg_class where relnamespace in (${userNamespaces}))
    union all
    select 'd ' || oid || ' ' || pg_get_expr(adbin, adrelid) from pg_attrdef
    union all
    select 'k ' || oid || ' ' || pg_get_constraintdef(oid) from pg_constraint where connamespace in (${userNamespaces})
    union all
    select 't ' || oid || ' ' || tgenabled::text from pg_trigger
    union all
    select 'f ' || oid || ' ' || md5(prosrc) from pg_proc where pronamespace in (${userNamespaces})
    union all
    select 's ' || seqrelid || ' ' || seqstart || ' ' || seqincrement from pg_sequence
    union all
    select 'g ' || setconfig::text from pg_db_role_setting
    union all
    select 'm ' || count(*) from drizzle.__drizzle_migrations
  ) items`;

/** The template's fingerprint, tables and sequences, and whether its tables are all empty. */
export async function profile(run: Run): Promise<Profile> {
  const [{ fingerprint }] = (await run(fingerprintQuery)) as [{ fingerprint: string }];
  const tables = (await run(`select format('%I.%I', schemaname, tablename) as name from pg_tables where ${dataSchemas}`)).map((r) => String(r.name));
  const nonEmpty = tables.length === 0
    ? "select null as name where false"
    : tables.map((t) => `select '${t}' as name where exists (select 1 from ${t})`).join(" union all ");
  const setvals = (await run(`select format('setval(%L, %s, false)', format('%I.%I', schemaname, sequencename), start_value) as call from pg_sequences where ${dataSchemas}`)).map((r) => String(r.call));
  const restartSequences = setvals.length === 0 ? "" : `select ${setvals.join(", ")}`;
  return { fingerprint, nonEmpty, restartSequences, recyclable: (await run(nonEmpty)).length === 0 };
}

/**
 * Resets a database a test gave back (see the top of this file); false when it cannot be recycled
 * (the caller closes or drops it). `pglite`: one session to clean; otherwise, other sessions to end.
 */
export async function reset(run: Run, template: Profile, { pglite }: { pglite: boolean }): Promise<boolean> {
  if (!template.recyclable) return false;
  try {
    if (pglite) {
      await run("discard all").catch(async () => {
        await run("rollback"); // a transaction the test left open
        await run("discard all");
      });
    } else {
      await run(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`);
    }
    const [{ fingerprint }] = (await run(fingerprintQuery)) as [{ fingerprint: string }];
    if (fingerprint !== template.fingerprint) return false;
    const tables = (await run(template.nonEmpty)).map((r) => String(r.name));
    if (tables.length > 0) await run(`truncate table ${tables.join(", ")} cascade`);
    if (template.restartSequences) await run(template.restartSequences);
    // Verified, not assumed: a writer that slipped in after the truncate (a session that reconnected,
    // a statement of the test still on its way) leaves rows, and the database is not handed out.
    return (await run(template.nonEmpty)).length === 0;
  } catch {
    return false;
  }
}

/**
 * A handle on `target` for one test. `close()` through it only marks it closed (the instance stays
 * open for the next test); after that, or after `revoke()`, every call fails as on a closed PGlite.
 * `revoke()` also removes the LISTENs made through it.
 */
export function revocable(target: PGlite): { client: PGlite; revoke(): Promise<void> } {
  let open = true;
  const unlistens: (() => Promise<void>)[] = [];
  const client = new Proxy(target, {
    get(t, property) {
      if (property === "close") return async () => void (open = false);
      if (property === "closed") return !open || t.closed;
      const value = Reflect.get(t, property, t) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (!open) return Promise.reject(new Error("PGlite is closed"));
        const result = (value as (...a: unknown[]) => unknown).apply(t, args);
        if (property !== "listen") return result;
        return (result as Promise<() => Promise<void>>).then((unlisten) => {
          unlistens.push(unlisten);
          return unlisten;
        });
      };
    },
  });
  return {
    client,
    async revoke() {
      open = false;
      for (const unlisten of unlistens.splice(0)) await unlisten().catch(() => {});
    },
  };
}
