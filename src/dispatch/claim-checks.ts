/**
 * The pre-send re-read of claimed rows (claim.ts `checkClaims`), shared by every message the
 * dispatcher holds. A message about to be sent needs a read of its row that is at most `maxAgeMs`
 * older than the moment it asked; one query answers for every held message at once, so a claim
 * batch costs one read, and a busy dispatcher at most one read per `maxAgeMs`.
 *
 * Why not one read per message, or per group of messages just before their sends: on the loopback
 * benchmark (40,000 messages, 100 slots, PostgreSQL) a read for each group of messages reaching
 * their gateway request made ~5 messages per query and halved throughput (10,500 → 3,760/s;
 * PostgreSQL CPU 1.4 → 3.6 s). A mailing change and a client delete or change (`invalidate`, on
 * every mailing and client signal) make every earlier read stale at once, so in the process that
 * made the change a message is sent only if its read followed the change. Elsewhere the change is
 * seen when its NOTIFY arrives (milliseconds); a lost notification, or a client changed by a CSV
 * import (which signals nothing), leaves the 100 ms bound: such a client may still get a message
 * sent up to 100 ms after the change, and the message then records that it was sent (SPEC §4: a
 * message handed to the gateway records its true outcome).
 *
 * A message leaves the reads once it is decided (`release`, before its send): the dispatcher does
 * not wait for the gateway's answer, which would have the rows of every send in flight read again
 * each `maxAgeMs` for nothing.
 */
import type { ClaimCheck, ClaimedMessage } from "./claim";

/** A held message and its latest read (`readAt` -Infinity until it has one). */
type Held = { message: ClaimedMessage; check: ClaimCheck | null; readAt: number; generation: number; error?: unknown };

export class ClaimChecks {
  private readonly held = new Map<number, Held>();
  private running: Promise<void> | null = null;
  /** bumped by `invalidate`: reads of an older generation no longer count */
  private generation = 0;

  constructor(
    private readonly read: (claims: ClaimedMessage[]) => Promise<Map<number, ClaimCheck>>,
    private readonly maxAgeMs = 100,
    /** wall-clock ms (not the injected business clock: this bounds real staleness) */
    private readonly wallNow: () => number = Date.now,
  ) {}

  /** the current generation, to pass to `hold` for a claim statement started now */
  get readGeneration(): number {
    return this.generation;
  }

  /** These messages were claimed by a statement started at `readAt`, which read their checks too. */
  hold(messages: ClaimedMessage[], readAt: number, generation: number): void {
    for (const message of messages) this.held.set(message.id, { message, check: message.check, readAt, generation });
  }

  /** This message is decided: later reads leave it out. */
  release(messageId: number): void {
    this.held.delete(messageId);
  }

  /** Something changed (a mailing): reads made so far no longer count. */
  invalidate(): void {
    this.generation++;
  }

  /** The latest read when it is usable now (no wait); undefined when `get` must read. */
  peek(message: ClaimedMessage): ClaimCheck | null | undefined {
    const entry = this.held.get(message.id);
    if (!entry || entry.error !== undefined || entry.generation !== this.generation) return undefined;
    return entry.readAt + this.maxAgeMs >= this.wallNow() ? entry.check : undefined;
  }

  /**
   * The row as read at most `maxAgeMs` before this call (or later), and after every change
   * signalled before this call; null when the row is no longer held by this claim. Throws if that
   * read failed. A change signalled after the call does not send it round again: otherwise a steady
   * stream of changes (one committing during every read) would hold the send back for ever.
   */
  async get(message: ClaimedMessage): Promise<ClaimCheck | null> {
    const askedAt = this.wallNow();
    const askedGeneration = this.generation;
    for (;;) {
      const entry = this.held.get(message.id);
      if (!entry) throw new Error(`message ${message.id} is not held`);
      if (entry.generation >= askedGeneration && entry.readAt + this.maxAgeMs >= askedAt) {
        if (entry.error !== undefined) throw entry.error;
        return entry.check;
      }
      // The read under way may cover it; if not, the next one (started after this call) does.
      await (this.running ??= this.readStale());
    }
  }

  /** One query for every held message without a usable read. */
  private async readStale(): Promise<void> {
    const startedAt = this.wallNow();
    const generation = this.generation;
    const stale = [...this.held.values()].filter((e) => e.generation !== generation || e.readAt + this.maxAgeMs < startedAt);
    try {
      const checks = await this.read(stale.map((e) => e.message));
      for (const e of stale) Object.assign(e, { check: checks.get(e.message.id) ?? null, readAt: startedAt, generation, error: undefined });
    } catch (error) {
      for (const e of stale) Object.assign(e, { check: null, readAt: startedAt, generation, error: error ?? new Error("read failed") });
    } finally {
      this.running = null;
    }
  }
}
