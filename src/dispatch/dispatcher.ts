/**
 * The dispatcher (SPEC §6): a Croner tick claims due messages, sends them concurrently through the
 * gateway, and writes results back in batches.
 *
 *   tick ──claim (≤ CLAIM_BATCH, only what fits)──▶ queue ──▶ ≤ SEND_CONCURRENCY slots
 *                                                              │ ≤ GATEWAY_CONCURRENCY HTTP requests at once
 *            slots freed ◀── group commit (one UPDATE) ◀── results
 *
 * - A tick never overlaps itself; `wake()` (a new due mailing, here or via NOTIFY) runs one now.
 * - A process holds at most SEND_CONCURRENCY + CLAIM_BATCH claimed messages, so nothing it claimed
 *   waits out its lease in a local queue.
 * - A send slot is freed only once its result is durable: after a crash at most SEND_CONCURRENCY
 *   messages can reach the gateway twice (the message id travels along so it can deduplicate).
 * - GATEWAY_CONCURRENCY (default: SEND_CONCURRENCY) caps the HTTP requests among the slots. Set
 *   lower, slots whose send is done keep waiting for the group commit while others already use
 *   the connections: with a fast gateway the connections stay busy (issue 4, BENCHMARKS.md).
 * - Just before each send the mailing's state is checked (cached per claim batch, invalidated by
 *   `mailingChanged`): nothing is sent for a paused, cancelled or deleted mailing, nor after the
 *   client-local end, nor outside the send window.
 */
import { Cron } from "croner";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import type { Gateway } from "../gateway/gateway";
import type { Logger } from "../ops/logger";
import { type ClaimedMessage, claimDue, loadMailingStates, loadTimezones, type MailingState } from "./claim";
import { type Completion, completeBatch, expireOverdue } from "./complete";
import { mailingChannel, type SignalListener, wakeChannel } from "./signals";
import { WindowCache } from "./window";

export type DispatcherOptions = {
  /** SEND_CONCURRENCY: messages taken for sending whose result is not yet durable */
  concurrency: number;
  /** GATEWAY_CONCURRENCY: HTTP requests to the gateway at once (≤ concurrency; default: concurrency) */
  gatewayConcurrency?: number;
  claimBatch: number;
  leaseSeconds: number;
  /**
   * PROVIDER_TIMEOUT_MS: the longest one send can take. A send starts only while its lease has that
   * long left plus time to write the result (see leaseNeededMs); unset: only while the lease lasts.
   */
  sendTimeoutMs?: number;
  retryDelaySeconds: number;
  /** Croner pattern; null = no timer (tests drive `tick()` themselves) */
  tick: string | null;
  /** called with the size of every non-empty claim (metrics: claim batch size) */
  onClaim?: (count: number) => void;
};

/** Counters for metrics and tests. */
export type DispatcherStats = { claimed: number; sent: number; retried: number; failed: number; expired: number; dropped: number };

export class Dispatcher implements SignalListener {
  private queue: ClaimedMessage[] = [];
  /** messages taken from the queue whose result is not yet durable */
  private inFlight = 0;
  private results: Completion[] = [];
  private flushing: Promise<void> | null = null;
  private ticking: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private cron: Cron | null = null;
  private unlisten: (() => Promise<void>)[] = [];
  private mailings = new Map<number, MailingState | null>();
  /** when each cached mailing state was read (wall-clock ms, not the injected clock) */
  private loadedAt = new Map<number, number>();
  private stale = new Map<number, Promise<void>>();
  private slotWaiters: (() => void)[] = [];
  /** HTTP requests under way, and the slots waiting for one to end */
  private requests = 0;
  private requestWaiters: (() => void)[] = [];
  /** messages handed back to be claimed again (not sent under their claim), for drain() */
  private handedBack = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private readonly windows = new WindowCache();
  readonly stats: DispatcherStats = { claimed: 0, sent: 0, retried: 0, failed: 0, expired: 0, dropped: 0 };

  constructor(
    private readonly database: Database,
    private readonly gateway: Gateway,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: DispatcherOptions,
  ) {
    const { sendTimeoutMs, leaseSeconds, concurrency, gatewayConcurrency } = options;
    for (const [name, value] of [["concurrency", concurrency], ["gatewayConcurrency", gatewayConcurrency ?? concurrency]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
    this.requestLimit = Math.min(gatewayConcurrency ?? concurrency, concurrency);
    this.leaseNeededMs = sendTimeoutMs ? sendTimeoutMs + Math.min(5000, leaseSeconds * 250) : 0;
    if (this.leaseNeededMs >= leaseSeconds * 1000) {
      // Every message would be handed back unsent, for ever (loadConfig refuses such a setting).
      throw new RangeError(`sendTimeoutMs ${sendTimeoutMs} leaves no time to send within a lease of ${leaseSeconds} s`);
    }
  }

  /** HTTP requests to the gateway at once: GATEWAY_CONCURRENCY, at most SEND_CONCURRENCY */
  private readonly requestLimit: number;

  /**
   * How much of its lease a claimed message must have left for its send to start: the send's
   * timeout plus a quarter of the lease (at most 5 s) to write the result. A send that could outlive
   * its lease might be claimed and sent by another process meanwhile: a duplicate beyond
   * SEND_CONCURRENCY. Messages that waited that long for a slot or a request are handed back.
   */
  private readonly leaseNeededMs: number;

  /** Starts the tick and listens for wake-ups from other processes. */
  async start(): Promise<void> {
    this.unlisten.push(await this.database.listen(wakeChannel, () => this.wake()));
    this.unlisten.push(
      await this.database.listen(mailingChannel, (payload) => {
        const id = Number(payload);
        if (Number.isInteger(id)) this.mailingChanged(id);
      }),
    );
    if (this.options.tick) {
      this.cron = new Cron(this.options.tick, { protect: true }, () => this.tick());
    }
    this.wake();
  }

  /** Runs a tick now, or right after the running one. */
  wake(): void {
    if (this.stopped) return;
    void this.tick();
  }

  /** Forget what we know of a mailing; the next send of it re-reads its state. */
  mailingChanged(id: number): void {
    const refresh = loadMailingStates(this.database.db, [id])
      .then((states) => {
        this.mailings.set(id, states.get(id) ?? null);
        this.loadedAt.set(id, Date.now());
      })
      .catch((error) => {
        this.logger.warn("mailing state refresh failed", { mailing_id: id, error: String(error) });
        this.mailings.delete(id);
      })
      .finally(() => {
        if (this.stale.get(id) === refresh) this.stale.delete(id);
      });
    this.stale.set(id, refresh);
  }

  /**
   * One tick: expire what is overdue, then claim and hand out due messages while full batches come
   * back. Resolves when this tick has claimed everything that was due (sends may still be running).
   */
  tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    this.ticking = (async () => {
      try {
        do {
          this.again = false;
          await this.tickOnce();
        } while (this.again && !this.stopped);
      } catch (error) {
        this.logger.error("tick failed", { error: String(error), cause: String((error as { cause?: unknown }).cause ?? "") });
      } finally {
        this.ticking = null;
      }
    })();
    return this.ticking;
  }

  private async tickOnce(): Promise<void> {
    const expired = await expireOverdue(this.database.db, this.clock.now());
    if (expired > 0) {
      this.stats.expired += expired;
      this.logger.info("messages expired", { count: expired });
    }
    const { concurrency, claimBatch } = this.options;
    const capacity = concurrency + claimBatch;
    const step = Math.min(claimBatch, concurrency);
    while (!this.stopped) {
      let room = capacity - this.inFlight - this.queue.length;
      while (room < step && !this.stopped) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        room = capacity - this.inFlight - this.queue.length;
      }
      if (this.stopped) return;
      const want = Math.min(room, claimBatch);
      const claimed = await claimDue(this.database.db, this.clock.now(), want, this.options.leaseSeconds);
      if (claimed.length > 0) {
        this.stats.claimed += claimed.length;
        this.options.onClaim?.(claimed.length);
        await this.refreshMailings(claimed);
        await this.resolveTimezones(claimed);
        this.queue.push(...claimed);
        this.pump();
      }
      if (claimed.length < want) return;
    }
  }

  /**
   * Makes sure the state of every mailing in a claimed batch is known: one query for those not
   * cached or cached longer than a second ago. Changes arrive sooner through `mailingChanged`
   * (in-process or NOTIFY); the one-second bound covers a notification lost with a connection.
   */
  private async refreshMailings(claimed: ClaimedMessage[]): Promise<void> {
    const nowMs = Date.now();
    const ids = [...new Set(claimed.map((m) => m.mailingId))].filter(
      (id) => !this.mailings.has(id) || nowMs - (this.loadedAt.get(id) ?? 0) > 1000,
    );
    if (ids.length === 0) return;
    const states = await loadMailingStates(this.database.db, ids);
    for (const id of ids) {
      // A change signalled while this query ran has its own, newer read: keep that one.
      if (this.stale.has(id) || (this.loadedAt.get(id) ?? 0) > nowMs) continue;
      this.mailings.set(id, states.get(id) ?? null);
      this.loadedAt.set(id, nowMs);
    }
  }

  /** Reads the client zones of messages whose mailing has a send window (the others never need one). */
  private async resolveTimezones(claimed: ClaimedMessage[]): Promise<void> {
    const windowed = claimed.filter((m) => this.mailings.get(m.mailingId)?.window);
    if (windowed.length === 0) return;
    const zones = await loadTimezones(this.database.db, [...new Set(windowed.map((m) => m.clientId))]);
    // "" for a client deleted meanwhile: known to have no zone (its message is being cancelled).
    for (const m of windowed) m.timezone = zones.get(m.clientId) ?? "";
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.options.concurrency && this.queue.length > 0) {
      const message = this.queue.shift()!;
      this.inFlight++;
      void this.process(message);
    }
  }

  /**
   * Decides, sends if it should, and records the result. Never throws. Takes a gateway request
   * first, so the checks before the send are as fresh as the send.
   */
  private async process(message: ClaimedMessage): Promise<void> {
    // A finishing request hands its place straight to the next waiter (first come, first served).
    if (this.requests >= this.requestLimit) await new Promise<void>((resolve) => this.requestWaiters.push(resolve));
    else this.requests++;
    let completion: Completion;
    try {
      completion = this.stopped ? handBack(message, this.clock.now().toISOString()) : await this.attempt(message);
    } catch (error) {
      this.logger.error("send crashed", { ...ids(message), error: String(error) });
      completion = { id: message.id, attempts: message.attempts, ...this.retryAt(message, this.clock.now().getTime()), lastError: "internal error" };
    } finally {
      const next = this.requestWaiters.shift();
      if (next) next();
      else this.requests--;
    }
    this.record(completion);
  }

  private async attempt(message: ClaimedMessage): Promise<Completion> {
    const pending = this.stale.get(message.mailingId);
    if (pending) await pending;
    const mailing = this.mailings.get(message.mailingId);
    const nowMs = this.clock.now().getTime();
    const base = { id: message.id, attempts: message.attempts };
    if (message.leaseUntil - nowMs <= this.leaseNeededMs) {
      // The message waited here (for a slot or a gateway request) until too little of its lease is
      // left for a send: if the send outlived the lease, another worker could claim and send it too.
      this.logger.warn("claim lapsed before sending", {
        ...ids(message),
        attempt: message.attempts,
        lease_left_ms: Math.max(0, message.leaseUntil - nowMs),
      });
      return handBack(message, new Date(nowMs).toISOString());
    }
    if (!mailing || mailing.cancelled) {
      // Deleted or cancelled: normally the row is already gone or cancelled and this write finds
      // nothing under our claim; if it is not, it must not come back every lease.
      this.stats.dropped++;
      this.logger.info("send skipped", { ...ids(message), attempt: message.attempts, outcome: "cancelled" });
      return { ...base, status: "cancelled", undo: true };
    }
    if (mailing.paused) {
      return handBack(message, "infinity");
    }
    if (nowMs >= message.expiresAt) {
      this.stats.expired++;
      this.logger.info("send skipped", { ...ids(message), attempt: message.attempts, outcome: "expired" });
      return { ...base, status: "expired", undo: true };
    }
    if (mailing.window && message.timezone === null) {
      // The mailing got its send window after this message was claimed, so its client's zone was
      // not read: hand it back; the next claim reads the zone and applies the window.
      return handBack(message, new Date(nowMs).toISOString());
    }
    if (mailing.window && message.timezone && !this.windows.isOpen(nowMs, message.timezone, mailing.window)) {
      const opening = this.windows.nextOpening(nowMs, message.timezone, mailing.window);
      if (opening >= message.expiresAt) return { ...base, status: "expired", undo: true };
      return handBack(message, new Date(opening).toISOString());
    }
    const started = performance.now();
    const result = await this.gateway.send({ id: message.id, phone: message.phone, text: mailing.text }, this.abort.signal);
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const logFields = { ...ids(message), attempt: message.attempts, outcome: result.outcome, latency_ms: latencyMs };
    if (result.outcome === "sent") {
      this.stats.sent++;
      this.logger.info("send", logFields);
      return { ...base, status: "sent" };
    }
    this.logger.info("send", { ...logFields, error: result.error });
    if (result.outcome === "failed") {
      this.stats.failed++;
      return { ...base, status: "failed", lastError: result.error };
    }
    this.stats.retried++;
    return { ...base, ...this.retryAt(message, this.clock.now().getTime(), mailing), lastError: result.error };
  }

  /** A retry after RETRY_DELAY_SECONDS, moved into the send window; expired if none is left. */
  private retryAt(
    message: ClaimedMessage,
    nowMs: number,
    mailing?: MailingState | null,
  ): Pick<Completion, "status" | "nextAttemptAt"> {
    let next = nowMs + this.options.retryDelaySeconds * 1000;
    if (mailing?.window && message.timezone) next = this.windows.nextOpening(next, message.timezone, mailing.window);
    if (next >= message.expiresAt) return { status: "expired" };
    return { status: "retrying", nextAttemptAt: new Date(next).toISOString() };
  }

  private record(completion: Completion): void {
    if (completion.undo && completion.nextAttemptAt && completion.nextAttemptAt !== "infinity") this.handedBack++;
    this.results.push(completion);
    this.flush();
  }

  /** Group commit: one write at a time; whatever piles up meanwhile goes in the next one. */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = (async () => {
      while (this.results.length > 0) {
        const batch = this.results.splice(0, 2000);
        for (;;) {
          try {
            await completeBatch(this.database.db, batch, this.clock.now());
            break;
          } catch (error) {
            // The database is away: keep the slots (nothing new is claimed) and try again.
            this.logger.error("writing results failed; retrying", { count: batch.length, error: String(error) });
            await Bun.sleep(1000);
          }
        }
        this.release(batch.length);
      }
    })().finally(() => {
      this.flushing = null;
      if (this.results.length > 0) this.flush();
    });
  }

  private release(count: number): void {
    this.inFlight -= count;
    this.pump();
    for (const resolve of this.slotWaiters.splice(0)) resolve();
    if (this.inFlight === 0 && this.queue.length === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves when nothing is queued or in flight (every result durable). */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0 && !this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Claims and sends until nothing is due (tests and benchmarks with a fixed clock), including
   * messages handed back meanwhile to be claimed again.
   */
  async drain(): Promise<void> {
    for (;;) {
      const claimed = this.stats.claimed;
      const handedBack = this.handedBack;
      await this.tick();
      await this.idle();
      if (this.stats.claimed === claimed && this.handedBack === handedBack) return;
    }
  }

  get busy(): number {
    return this.inFlight + this.queue.length;
  }

  /**
   * Stops claiming, hands back what was claimed but not started, lets sends in flight finish and
   * their results land. Sends still running after `deadlineMs` are aborted (and retried later).
   */
  async stop(deadlineMs = this.options.leaseSeconds * 800): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cron?.stop();
    for (const unlisten of this.unlisten.splice(0)) await unlisten().catch(() => {});
    for (const resolve of this.slotWaiters.splice(0)) resolve();
    // A claim still running lands in the queue after this; wait for it, then hand back the queue.
    if (this.ticking) await this.ticking;
    const queued = this.queue.splice(0);
    if (queued.length > 0) {
      this.inFlight += queued.length;
      for (const m of queued) {
        this.results.push(handBack(m, this.clock.now().toISOString()));
      }
      this.flush();
    }
    const timer = setTimeout(() => this.abort.abort(), deadlineMs);
    await this.idle();
    while (this.flushing) await this.flushing;
    clearTimeout(timer);
    if (this.ticking) await this.ticking;
  }
}

/** Gives a claimed message back unsent, due again at `nextAttemptAt` (ISO, or "infinity" while paused). */
function handBack(message: ClaimedMessage, nextAttemptAt: string): Completion {
  return { id: message.id, attempts: message.attempts, status: message.attempts > 1 ? "retrying" : "scheduled", nextAttemptAt, undo: true };
}

function ids(message: ClaimedMessage) {
  return { mailing_id: message.mailingId, message_id: message.id, client_id: message.clientId };
}
