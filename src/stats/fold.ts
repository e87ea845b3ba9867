/**
 * Folding the statistics counters (drizzle/0007): the triggers on messages append changes to
 * `mailing_count_deltas`; every second one process adds them into `mailing_counts` and empties
 * the deltas with TRUNCATE (`mailing_counts_fold()`), so neither table keeps dead rows for
 * autovacuum to clean up. Readers sum both (`mailing_counts_live`), so statistics are exact whether
 * or not a fold has run; a fold that is late or skipped only leaves more deltas to read.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import type { Logger } from "../ops/logger";

const minLockMs = 20;
const maxLockMs = 500;

/** Folds the deltas now; returns how many delta rows were folded (-1: the table was busy, skipped). */
export async function foldCounters(database: Database, lockMs = 200): Promise<number> {
  const [row] = await database.rows<{ folded: number }>(sql`select mailing_counts_fold(${lockMs}::int) as folded`);
  return Number(row?.folded ?? 0);
}

/**
 * Folds every `everyMs` in the background (never two at once in this process); returns stop(). The
 * deltas between two folds are what the counters take beyond their live size: at 3,000 sends/s over
 * 20 mailings about 60 KB a second (bench/suites/counter-bloat.ts).
 */
export function startCounterFold(database: Database, logger: Logger, everyMs = 1000): () => void {
  let running = false;
  // While a fold waits for its lock, writers queue behind it: the wait is kept short (20 ms), and
  // only grows (to 500 ms) after folds that did not get the lock, so that one eventually does.
  let lockMs = minLockMs;
  let failing = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const folded = await foldCounters(database, lockMs);
      lockMs = folded < 0 ? Math.min(lockMs * 2, maxLockMs) : minLockMs;
      failing = false;
    } catch (error) {
      // Nothing is lost: the deltas stay and are read as they are until a later fold. Logged once
      // per run of failures (a database away for a minute is not 60 lines).
      if (!failing) logger.warn("counter fold failed", { error: String(error) });
      failing = true;
    } finally {
      running = false;
    }
  }, everyMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
