/**
 * What the dispatcher needs of a mailing to send its messages (text, send window), cached while it
 * holds claimed messages of that mailing. Whether a message may still go out (mailing paused or
 * cancelled, client gone or no longer matching) is not taken from here: the pre-send re-read of the
 * claimed rows (claim.ts `checkClaims`) answers that from the database.
 *
 * - Bounded: an entry lives only while a claimed message of its mailing is held (claimed, result not
 *   yet durable), so the cache never holds more mailings than SEND_CONCURRENCY + CLAIM_BATCH;
 *   finished, cancelled and deleted mailings leave with their last message.
 * - Fresh: a claim re-reads entries older than `maxAgeMs` (one query per claim), and `changed()`
 *   (in-process or NOTIFY) re-reads a held mailing at once.
 * - A failed read leaves the entry unknown, never "deleted": `get()` reads it again.
 */
import type { MailingState } from "./claim";

type Entry = { state: MailingState | null; loadedAt: number };

export class MailingCache {
  private readonly entries = new Map<number, Entry>();
  /** claimed messages held per mailing */
  private readonly holders = new Map<number, number>();
  /** mailings whose re-read (asked for by `changed()`) has not finished, and the read that covers each */
  private readonly reloads = new Map<number, Promise<void>>();
  /** changed mailings waiting for the next re-read */
  private readonly changedIds = new Set<number>();
  /** the next re-read (takes `changedIds` when it starts) and the one under way */
  private queuedReload: Promise<void> | null = null;
  private runningReload: Promise<void> | null = null;

  constructor(
    private readonly load: (ids: number[]) => Promise<Map<number, MailingState>>,
    private readonly onReloadError: (mailingIds: number[], error: unknown) => void,
    private readonly maxAgeMs = 1000,
  ) {}

  /** A claimed message of this mailing is held from now until `release`. */
  hold(mailingId: number): void {
    this.holders.set(mailingId, (this.holders.get(mailingId) ?? 0) + 1);
  }

  /** That message's result is durable (or given up): forget the mailing once none is held. */
  release(mailingId: number): void {
    const count = (this.holders.get(mailingId) ?? 1) - 1;
    if (count > 0) {
      this.holders.set(mailingId, count);
      return;
    }
    this.holders.delete(mailingId);
    this.entries.delete(mailingId);
  }

  /** Reads, in one query, the held mailings not cached or cached longer than `maxAgeMs` ago. */
  async refresh(mailingIds: Iterable<number>): Promise<void> {
    const startedAt = Date.now();
    const ids = [...new Set(mailingIds)].filter((id) => {
      const entry = this.entries.get(id);
      return !this.reloads.has(id) && (!entry || startedAt - entry.loadedAt > this.maxAgeMs);
    });
    if (ids.length === 0) return;
    const states = await this.load(ids);
    for (const id of ids) {
      // A change signalled while this query ran has its own, newer read: keep that one.
      if (this.reloads.has(id) || (this.entries.get(id)?.loadedAt ?? 0) > startedAt) continue;
      this.store(id, states.get(id) ?? null, startedAt);
    }
  }

  /**
   * The mailing changed (PATCH, pause, cancel, delete): re-read it soon if a held message needs it.
   * Changes signalled while a re-read runs are read together by the next one (one query).
   */
  changed(mailingId: number): void {
    if (!this.holders.has(mailingId)) return; // nothing cached; the next claim reads it
    this.entries.delete(mailingId);
    this.changedIds.add(mailingId);
    this.queuedReload ??= this.reloadAfter(this.runningReload);
    this.reloads.set(mailingId, this.queuedReload);
  }

  /** Re-reads the changed mailings once `previous` is done. Never rejects. */
  private async reloadAfter(previous: Promise<void> | null): Promise<void> {
    await previous;
    await Promise.resolve(); // changes signalled in the same turn join this read
    const self = this.queuedReload!;
    this.queuedReload = null;
    this.runningReload = self;
    const ids = [...this.changedIds];
    this.changedIds.clear();
    const startedAt = Date.now();
    try {
      const states = await this.load(ids);
      for (const id of ids) this.store(id, states.get(id) ?? null, startedAt);
    } catch (error) {
      this.onReloadError(ids, error); // left unknown: `get()` reads them again
    } finally {
      for (const id of ids) if (this.reloads.get(id) === self) this.reloads.delete(id);
      if (this.runningReload === self) this.runningReload = null;
    }
  }

  /** The cached state when there is one and no re-read is under way; undefined when `get` must wait. */
  peek(mailingId: number): MailingState | null | undefined {
    if (this.reloads.has(mailingId)) return undefined;
    return this.entries.get(mailingId)?.state;
  }

  /** The mailing's state (null: deleted), read again if unknown. Throws if that read fails. */
  async get(mailingId: number): Promise<MailingState | null> {
    const reload = this.reloads.get(mailingId);
    if (reload) await reload;
    const entry = this.entries.get(mailingId);
    if (entry) return entry.state;
    const startedAt = Date.now();
    const state = (await this.load([mailingId])).get(mailingId) ?? null;
    this.store(mailingId, state, startedAt);
    return state;
  }

  /** mailings cached right now (for tests and metrics) */
  get size(): number {
    return this.entries.size;
  }

  private store(id: number, state: MailingState | null, loadedAt: number): void {
    if (this.holders.has(id)) this.entries.set(id, { state, loadedAt });
  }
}
