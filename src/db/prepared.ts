/**
 * Drizzle queries built once per database and kept prepared. Building a query with Drizzle cost as
 * much CPU as running it here (80–130 µs for a select, about 1 ms for the mailing with its status
 * expression; issue 4). Only for the database itself, not inside a transaction: a prepared query
 * belongs to the session it was built on.
 */
import type { Db } from "./client";

const preparedQueries = new WeakMap<Db, Map<string, unknown>>();

/** The query named `name` for this database, built by `build` the first time. */
export function prepared<T>(db: Db, name: string, build: () => T): T {
  let queries = preparedQueries.get(db);
  if (!queries) preparedQueries.set(db, (queries = new Map()));
  let query = queries.get(name) as T | undefined;
  if (!query) queries.set(name, (query = build()));
  return query;
}
