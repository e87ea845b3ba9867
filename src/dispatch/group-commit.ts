/**
 * Group commit of send results (SPEC §6): results that finish while a write runs go into the next
 * one, one `completeBatch` statement per batch of at most 2,000. `onWritten` hears of each batch once
 * it is durable (the dispatcher frees those send slots then, so after a crash at most
 * SEND_CONCURRENCY sends can repeat) or given up.
 *
 * While the database is away a batch is retried every second (nothing new is claimed meanwhile:
 * the slots stay taken). Once the dispatcher is stopping, `abandon()` ends the retries: those
 * messages stay `sending` and their leases hand them to another worker (SPEC §6 shutdown).
 *
 * An error that is not the database being away (a data or constraint error: retrying cannot help)
 * would otherwise hold its slots, and with them all sending, for ever. Such a batch is split in
 * halves until the row at fault stands alone; that row is given up (logged with its id: its lease
 * hands it to a worker again) and the others are written.
 */
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import type { Logger } from "../ops/logger";
import { databaseUnavailable } from "../db/errors";
import { type Completion, completeBatch } from "./complete";

const maxRows = 2000;
const retryAfterMs = 1000;

/** A result to write, and whatever its writer needs back when it is written. */
export type PendingResult<T> = { completion: Completion; owner: T };

export class GroupCommit<T> {
  private pending: PendingResult<T>[] = [];
  private writing = false;
  private abandoned = false;
  /** ends the pause between two tries at once when abandoning */
  private wakeRetry: (() => void) | null = null;

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** `durable`: false when the batch was given up (abandon) */
    private readonly onWritten: (batch: PendingResult<T>[], durable: boolean) => void,
    /**
     * Embedded PGlite only (issue 16, target 3): before each write, let the I/O callbacks already
     * due run first, so that the send results that arrived meanwhile join the batch. PGlite runs a
     * statement synchronously inside the process: without this each result was written on its own
     * (10,000 one-row writes for 10,000 sends), as nothing else could run during a write.
     */
    private readonly gatherFirst = false,
  ) {}

  write(result: PendingResult<T>): void {
    this.pending.push(result);
    if (!this.writing) void this.writeAll();
  }

  /** Stops retrying: results not yet written are given up (their leases cover them). */
  abandon(): void {
    this.abandoned = true;
    this.wakeRetry?.();
  }

  private async writeAll(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.length > 0) {
        if (this.gatherFirst) await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.pending.splice(0, maxRows);
        const givenUp = await this.writeBatch(batch.map((r) => r.completion));
        if (givenUp.size === 0) this.onWritten(batch, true);
        else {
          const written = batch.filter((r) => !givenUp.has(r.completion));
          if (written.length > 0) this.onWritten(written, true);
          this.onWritten(batch.filter((r) => givenUp.has(r.completion)), false);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /** Writes the batch; returns the completions given up (abandoned, or refused for good). */
  private async writeBatch(completions: Completion[]): Promise<Set<Completion>> {
    for (;;) {
      if (this.abandoned) {
        this.logger.warn("results not written; their leases will hand them to a worker", { count: completions.length });
        return new Set(completions);
      }
      try {
        await completeBatch(this.database.db, completions, this.clock.now());
        return new Set();
      } catch (error) {
        if (!databaseUnavailable(error)) return this.writeApart(completions, error);
        this.logger.error("writing results failed; retrying", { count: completions.length, error });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryAfterMs);
          this.wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRetry = null;
      }
    }
  }

  /** A batch refused for a reason retrying cannot fix: its halves are written on their own. */
  private async writeApart(completions: Completion[], error: unknown): Promise<Set<Completion>> {
    if (completions.length === 1) {
      const [completion] = completions;
      this.logger.error("a result was refused by the database; its lease will hand the message to a worker again", {
        message_id: completion!.id,
        status: completion!.status,
        error,
      });
      return new Set(completions);
    }
    const middle = Math.ceil(completions.length / 2);
    const first = await this.writeBatch(completions.slice(0, middle));
    const second = await this.writeBatch(completions.slice(middle));
    return new Set([...first, ...second]);
  }
}
