/**
 * Autovacuum for the embedded database (issue 16, target 3). PGlite runs PostgreSQL in single-user
 * mode with max_worker_processes = 0: `autovacuum` reads `on`, but no launcher or worker ever runs,
 * so no table is ever analysed or vacuumed. After a 100,000-client import and a mailing the planner
 * still believed `messages` nearly empty and claimed each batch of 500 by reading all 100,000 due
 * rows and sorting them on disk (about 1–4 s per claim, the event loop blocked meanwhile: about 5
 * sends/s); the dead row versions every send leaves behind were never reclaimed either.
 *
 * This loop does what the autovacuum daemon would, with its default thresholds: every few seconds
 * one cheap read of pg_stat_user_tables, then ANALYZE a table whose changed rows since its last
 * analysis exceed 50 + 10 % of its rows, and VACUUM (ANALYZE) one whose dead rows exceed 50 + 20 %.
 * Statements on PGlite run one at a time, so it never runs beside another statement; a vacuum of a
 * 100,000-row table holds the (single-threaded) process for a fraction of a second.
 */
import { sql } from "drizzle-orm";
import type { Logger } from "../ops/logger";
import type { Database } from "./client";

type Due = { relname: string; vacuum: boolean; live: number; dead: number; modified: number };

/** Tables the autovacuum daemon would process now, by its default thresholds. */
export async function tablesDue(database: Database): Promise<Due[]> {
  return database.rows<Due>(sql`
    select s.relname::text as relname,
      s.n_dead_tup > 50 + 0.2 * s.n_live_tup as vacuum,
      s.n_live_tup::int as live, s.n_dead_tup::int as dead, s.n_mod_since_analyze::int as modified
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid
    where s.schemaname = 'public'
      and (s.n_mod_since_analyze > 50 + 0.1 * s.n_live_tup or s.n_dead_tup > 50 + 0.2 * s.n_live_tup
        -- PGlite keeps no statistics counters across a restart: a table never analysed is analysed.
        or (c.reltuples < 0 and pg_relation_size(c.oid) > 0))
    order by s.relname`);
}

/** One pass: analyses (or vacuums and analyses) every table that is due; returns what it did. */
export async function maintainOnce(database: Database): Promise<Due[]> {
  const due = await tablesDue(database);
  for (const table of due) {
    const name = sql.identifier(table.relname);
    await database.rows(table.vacuum ? sql`vacuum (analyze) ${name}` : sql`analyze ${name}`);
  }
  return due;
}

/**
 * Runs maintainOnce every `everyMs` on an embedded database (nothing on PostgreSQL, whose own
 * autovacuum does this); the returned function stops it and waits for a pass under way.
 */
export function startEmbeddedMaintenance(database: Database, logger: Logger, everyMs = 2_000): () => Promise<void> {
  if (database.kind !== "pglite") return async () => {};
  let running: Promise<void> | null = null;
  let stopped = false;
  const pass = async () => {
    try {
      const started = performance.now();
      const done = await maintainOnce(database);
      if (done.length > 0) {
        logger.debug("embedded autovacuum", {
          tables: done.map((t) => `${t.vacuum ? "vacuum analyze" : "analyze"} ${t.relname} (live ${t.live}, dead ${t.dead}, changed ${t.modified})`),
          duration_ms: Math.round(performance.now() - started),
        });
      }
    } catch (error) {
      if (!stopped) logger.warn("embedded autovacuum failed", { error: String(error) });
    }
  };
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = pass().finally(() => (running = null));
  }, everyMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
