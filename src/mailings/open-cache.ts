/**
 * The open mailings (not cancelled, not over everywhere), cached for the client write path: every
 * `POST /api/v1/clients` needs them to plan the new client's messages, and reading them was one of
 * five round trips per create (issue 4, target 5).
 *
 * Freshness: the cache is dropped by this process's MailingService right after each mailing write
 * commits, by a mailing signal from any other process (LISTEN on the two signal channels, a few ms),
 * and in any case after `ttlMs`, which bounds the staleness when a notification is lost with its
 * connection. Whatever the cache holds, the planning statement joins `mailings` again, so a mailing
 * cancelled or deleted meanwhile gets no message.
 *
 * The cache listens from its first `get` until `close()`; whoever creates it closes it
 * (createServices → `close`).
 */
import type { Database } from "../db/client";
import type { PlannableMailing } from "../dispatch/plan";
import { mailingChannel, wakeChannel } from "../dispatch/signals";
import { openMailingRows, toPlannable } from "./repo";

type Entry = { mailing: PlannableMailing; endsAtMs: number };

export class OpenMailingsCache {
  private entries: Entry[] | null = null;
  private loadedAt = 0;
  /** the `now` the list was read for: mailings that had ended by then are not in it */
  private loadedFor = 0;
  /** bumped by every invalidation, so a load that started before one is not kept */
  private generation = 0;
  private listening: Promise<void> | null = null;
  private unlisteners: (() => Promise<void>)[] = [];
  private closed = false;

  constructor(
    private readonly database: Database,
    private readonly ttlMs = 1000,
  ) {}

  /** Forget the cached list: the next `get` reads it again. */
  invalidate(): void {
    this.generation++;
    this.entries = null;
  }

  /** The mailings still open at `now`. */
  async get(now: Date): Promise<PlannableMailing[]> {
    this.listening ??= this.listen();
    await this.listening;
    const nowMs = now.getTime();
    let entries = this.entries;
    if (!entries || Date.now() - this.loadedAt > this.ttlMs || nowMs < this.loadedFor) {
      const generation = this.generation;
      const startedAt = Date.now();
      const rows = await openMailingRows(this.database.db, now);
      entries = rows.map((row) => ({ mailing: toPlannable(row), endsAtMs: row.endsAt.getTime() }));
      if (generation === this.generation) {
        this.entries = entries;
        this.loadedAt = startedAt;
        this.loadedFor = nowMs;
      }
    }
    return entries.filter((e) => e.endsAtMs > nowMs).map((e) => e.mailing);
  }

  /** Stops listening for mailing changes; a later `get` reads the list but no longer listens. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.listening) await this.listening;
    for (const unlisten of this.unlisteners.splice(0)) await unlisten().catch(() => {});
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    try {
      this.unlisteners.push(await this.database.listen(mailingChannel, () => this.invalidate()));
      this.unlisteners.push(await this.database.listen(wakeChannel, () => this.invalidate()));
    } catch {
      // Without notifications the TTL still bounds how stale the list can be.
    }
  }
}
