/**
 * The dispatcher (SPEC §6): a Croner tick claims due messages, sends them concurrently through the
 * gateway, and writes results back in batches.
 *
 *   tick ──claim (≤ CLAIM_BATCH, only what fits)──▶ queue ──▶ ≤ SEND_CONCURRENCY send slots
 *          │ ≤ GATEWAY_CONCURRENCY gateway requests: re-read the claimed rows (batched), decide, send
 *          slots freed ◀── group commit (one UPDATE per batch) ◀── results
 *
 * - A tick never overlaps itself; `wake()` (a new due mailing, here or via NOTIFY) runs one now.
 * - A process holds at most SEND_CONCURRENCY + CLAIM_BATCH claimed messages, so nothing it claimed
 *   waits out its lease in a local queue.
 * - A send slot is freed only once its result is durable: after a crash at most SEND_CONCURRENCY
 *   messages can reach the gateway twice (the message id travels along so it can deduplicate).
 * - GATEWAY_CONCURRENCY (default: SEND_CONCURRENCY) caps the HTTP requests among the slots. Set
 *   lower, slots whose send is done keep waiting for the group commit while others already use
 *   the connections: with a fast gateway the connections stay busy (issue 4, bench/NOTES.md).
 * - Just before each send, with a gateway request in hand, the claimed row as read with its client
 *   and mailing at most 100 ms earlier (claim-checks.ts: one query for every held message) decides
 *   through presend.ts: a deleted or no longer matching client or a cancelled mailing → `cancelled`
 *   (never sent), paused → handed back, past the client-local end → `expired`, outside the send
 *   window → handed back with the next opening. A send handed to the gateway records its outcome.
 */
import { Cron } from "croner";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import type { Gateway } from "../gateway/gateway";
import type { Logger } from "../ops/logger";
import { WindowCache } from "../time/send-window";
import { ClaimChecks } from "./claim-checks";
import { type ClaimCheck, type ClaimedMessage, checkClaims, claimDue, loadMailingStates, type MailingState } from "./claim";
import { type Completion, expireOverdue } from "./complete";
import { ChangeSignal, Semaphore } from "./concurrency";
import { GroupCommit } from "./group-commit";
import { applyPendingReceipts } from "./receipts";
import { type RateOptions, SendRate } from "./rate";
import { render } from "../mailings/template";
import { MailingCache } from "./mailing-cache";
import { decideBeforeSend, decideRetry } from "./presend";
import { clientChannel, mailingChannel, type SignalListener, wakeChannel } from "./signals";

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
  /** how old (wall-clock ms) the pre-send read of a claimed row may be; default 100 (claim-checks.ts) */
  checkMaxAgeMs?: number;
  /** called with the message ids of every pre-send re-read (tests and benchmarks: rows read per message) */
  onCheckRead?: (messageIds: number[]) => void;
  /** PROVIDER_RATE / PROVIDER_BURST: the send-rate cap shared by all processes (rate.ts); null: none */
  rate?: RateOptions | null;
};

/**
 * Outcome counters for metrics and tests: one per message decision. `expired` counts the sweep, the
 * pre-send check and retries that would land after the end; `dropped` counts messages cancelled
 * before the send and rows found no longer held by their claim.
 */
export type DispatcherStats = { claimed: number; sent: number; retried: number; failed: number; expired: number; dropped: number };

export class Dispatcher implements SignalListener {
  /** claimed messages waiting for a send slot */
  private queue: ClaimedMessage[] = [];
  /** messages with a send slot whose result is not yet durable */
  private inFlight = 0;
  private ticking: Promise<void> | null = null;
  /** a wake-up arrived during the running tick: it claims once more before it ends */
  private tickRequested = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private cron: Cron | null = null;
  private unlisteners: (() => Promise<void>)[] = [];
  /** messages handed back to be claimed again (not sent under their claim), for drain() */
  private handedBack = 0;
  /** notified whenever a slot frees up or the dispatcher stops: the claim loop and idle() look again */
  private readonly changes = new ChangeSignal();
  private readonly gatewayRequests: Semaphore;
  private readonly claimChecks: ClaimChecks;
  private readonly results: GroupCommit<ClaimedMessage>;
  private readonly mailings: MailingCache;
  private readonly abort = new AbortController();
  private readonly windows = new WindowCache();
  /** the shared bucket and pause (rate.ts) */
  private readonly rate: SendRate;
  /** a gateway's 429 Retry-After, here or in another process: nothing is sent before (epoch ms) */
  private pausedUntilMs = 0;
  readonly stats: DispatcherStats = { claimed: 0, sent: 0, retried: 0, failed: 0, expired: 0, dropped: 0 };

  /**
   * How much of its lease a claimed message must have left for its send to start: the send's
   * timeout plus a quarter of the lease (at most 5 s) to write the result. A send that could outlive
   * its lease might be claimed and sent by another process meanwhile: a duplicate beyond
   * SEND_CONCURRENCY. Messages that waited that long for a slot or a request are handed back.
   */
  private readonly leaseNeededMs: number;

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
    this.leaseNeededMs = sendTimeoutMs ? sendTimeoutMs + Math.min(5000, leaseSeconds * 250) : 0;
    if (this.leaseNeededMs >= leaseSeconds * 1000) {
      // Every message would be handed back unsent, for ever (loadConfig refuses such a setting).
      throw new RangeError(`sendTimeoutMs ${sendTimeoutMs} leaves no time to send within a lease of ${leaseSeconds} s`);
    }
    this.rate = new SendRate(database.db, options.rate ?? { perSecond: 0, burst: 0 });
    this.gatewayRequests = new Semaphore(Math.min(gatewayConcurrency ?? concurrency, concurrency));
    // Embedded PGlite: claims and claim checks answer as one JSON value (claim.ts, answerRows).
    const json = database.kind === "pglite";
    this.claimChecks = new ClaimChecks((claims) => {
      options.onCheckRead?.(claims.map((c) => c.id));
      return checkClaims(database.db, claims, { json });
    }, options.checkMaxAgeMs);
    this.results = new GroupCommit<ClaimedMessage>(
      database,
      clock,
      logger,
      (batch) => this.release(batch.map((r) => r.owner)),
      // Embedded only: a write holds the whole process there (group-commit.ts).
      database.kind === "pglite",
    );
    this.mailings = new MailingCache(
      (ids) => loadMailingStates(database.db, ids),
      (mailingIds, error) => logger.warn("mailing state refresh failed", { mailing_ids: mailingIds, error: String(error) }),
    );
  }

  /** Starts the tick and listens for wake-ups from other processes. */
  async start(): Promise<void> {
    this.unlisteners.push(await this.database.listen(wakeChannel, () => this.wake()));
    this.unlisteners.push(
      await this.database.listen(mailingChannel, (payload) => {
        const id = Number(payload);
        if (Number.isInteger(id)) this.mailingChanged(id);
      }),
    );
    this.unlisteners.push(await this.database.listen(clientChannel, () => this.clientChanged()));
    if (this.options.tick) {
      this.cron = new Cron(this.options.tick, { protect: true }, () => this.tick());
    }
    this.wake();
  }

  /** Runs a tick now, or right after the running one. */
  wake(): void {
    if (this.stopping) return;
    void this.tick();
  }

  /** A mailing changed: a held message of it sees the change (text, window, pause, cancel) before its send. */
  mailingChanged(id: number): void {
    this.claimChecks.invalidate();
    this.mailings.changed(id);
  }

  /**
   * Clients were deleted or changed (here or, via NOTIFY, elsewhere): a held message is checked
   * against a read made after that before its send, so a client deleted before the send never gets
   * it (SPEC §3); only a send already at the gateway records its outcome.
   */
  clientChanged(): void {
    this.claimChecks.invalidate();
  }

  /** mailings whose state is cached right now (bounded by the messages held) */
  get cachedMailings(): number {
    return this.mailings.size;
  }

  /**
   * One tick: expire what is overdue, then claim and hand out due messages while full batches come
   * back. Resolves when this tick has claimed everything that was due (sends may still be running).
   */
  tick(): Promise<void> {
    if (this.ticking) {
      this.tickRequested = true;
      return this.ticking;
    }
    this.ticking = (async () => {
      try {
        do {
          this.tickRequested = false;
          await this.tickOnce();
        } while (this.tickRequested && !this.stopping);
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
    await applyPendingReceipts(this.database.db, this.clock.now());
    if (expired > 0) {
      this.stats.expired += expired;
      this.logger.info("messages expired", { count: expired });
    }
    const { concurrency, claimBatch } = this.options;
    const limited = !!this.options.rate;
    // Without a rate cap the bucket is not read per claim; another process's 429 is heard once a tick.
    if (!limited) this.pausedUntilMs = Math.max(this.pausedUntilMs, await this.rate.pausedUntil());
    const capacity = concurrency + claimBatch;
    const step = Math.min(claimBatch, concurrency);
    const room = () => capacity - this.inFlight - this.queue.length;
    while (!this.stopping) {
      while (room() < step && !this.stopping) await this.changes.next();
      // Let timers and I/O run between claims: with PGlite (in-process) and the sandbox (answers
      // at once) every step of a send resolves as a microtask, and without this a large mailing
      // kept the HTTP server from answering until it was all sent.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.stopping) return;
      let want = Math.min(room(), claimBatch);
      // Paused by a 429: nothing is claimed; a tick after the pause ends claims again.
      if (this.pausedUntilMs > this.clock.now().getTime()) return;
      if (limited) {
        const grant = await this.rate.take(want, this.clock.now());
        this.pausedUntilMs = Math.max(this.pausedUntilMs, grant.pausedUntilMs);
        if (this.pausedUntilMs > this.clock.now().getTime()) return;
        if (grant.granted === 0) {
          // Out of tokens: wait for the next one (or a freed slot) and take again.
          await this.wait(grant.retryAtMs - this.clock.now().getTime());
          continue;
        }
        want = grant.granted;
      }
      const claimStartedAt = Date.now();
      const generation = this.claimChecks.readGeneration;
      const claimed = await claimDue(this.database.db, this.clock.now(), want, this.options.leaseSeconds, {
        json: this.database.kind === "pglite",
      });
      if (claimed.length > 0) {
        this.stats.claimed += claimed.length;
        this.options.onClaim?.(claimed.length);
        for (const message of claimed) this.mailings.hold(message.mailingId);
        this.claimChecks.hold(claimed, claimStartedAt, generation);
        await this.mailings.refresh(claimed.map((m) => m.mailingId)).catch((error) => {
          // Each message reads its mailing again before its send (MailingCache.get).
          this.logger.warn("reading mailings of a claim failed", { error: String(error) });
        });
        this.queue.push(...claimed);
        this.pump();
      }
      if (limited && claimed.length < want) await this.rate.giveBack(want - claimed.length);
      if (claimed.length < want) return;
    }
  }

  private pump(): void {
    while (!this.stopping && this.inFlight < this.options.concurrency && this.queue.length > 0) {
      const message = this.queue.shift()!;
      this.inFlight++;
      void this.process(message);
    }
  }

  /**
   * Decides, sends if it should, and records the result; frees the slot once it is durable. Never
   * throws. Takes a gateway request first, so the checks before the send are as fresh as the send.
   */
  private async process(message: ClaimedMessage): Promise<void> {
    await this.gatewayRequests.acquire();
    let completion: Completion | null;
    try {
      completion = this.stopping ? this.handBack(message, this.clock.now().getTime()) : await this.attempt(message);
    } catch (error) {
      // Whether the gateway got it is unknown: count the attempt and retry after the usual delay.
      this.logger.error("send crashed", { ...ids(message), error: String(error) });
      const next = decideRetry(this.clock.now().getTime(), this.options.retryDelaySeconds * 1000, message, null, null, this.windows);
      completion = next.status === "expired"
        ? { id: message.id, attempts: message.attempts, status: "expired", lastError: "internal error" }
        : { id: message.id, attempts: message.attempts, status: "retrying", nextAttemptAt: new Date(next.at).toISOString(), lastError: "internal error" };
    } finally {
      this.gatewayRequests.release();
    }
    this.finish(message, completion);
  }

  /** Writes the message's result; its slot is freed once that is durable (or at once: nothing to write). */
  private finish(message: ClaimedMessage, completion: Completion | null): void {
    this.claimChecks.release(message.id);
    if (completion) this.results.write({ completion, owner: message });
    else this.release([message]);
  }

  /** Frees the send slots of messages whose results are durable (or given up at stop). */
  private release(messages: ClaimedMessage[]): void {
    this.inFlight -= messages.length;
    for (const message of messages) this.mailings.release(message.mailingId);
    this.pump();
    this.changes.notify();
  }

  private async attempt(message: ClaimedMessage): Promise<Completion | null> {
    let check: ClaimCheck | null;
    let mailing: MailingState | null;
    try {
      // Both are usually known already: no await then (one less promise per message).
      check = this.claimChecks.peek(message) ?? (await this.claimChecks.get(message));
      mailing = !check ? null : (this.mailings.peek(message.mailingId) ?? (await this.mailings.get(message.mailingId)));
    } catch (error) {
      // The database did not answer: nothing is known, so nothing is sent or cancelled.
      this.logger.warn("pre-send check failed; handed back", { ...ids(message), error: String(error) });
      return this.handBack(message, this.clock.now().getTime());
    } finally {
      // Decided on this read: later re-reads leave it out. Kept held through its send, its row was
      // read again with every re-read while the gateway had it, for nothing (few such rows at the
      // settings measured, bench/NOTES.md; more with a slow gateway and sends waiting for slots).
      this.claimChecks.release(message.id);
    }
    const nowMs = this.clock.now().getTime();
    const base = { id: message.id, attempts: message.attempts };
    const decision = decideBeforeSend(
      // A held row whose mailing is gone (no foreign key) is cancelled, not sent and not left behind.
      { nowMs, message, leaseNeededMs: this.leaseNeededMs, check: check && !mailing ? { ...check, cancelled: true } : check, window: mailing?.window ?? null },
      this.windows,
    );
    switch (decision.action) {
      case "drop":
        this.stats.dropped++;
        this.logger.info("send skipped", { ...ids(message), attempt: message.attempts, outcome: "gone" });
        return null;
      case "cancel":
        this.stats.dropped++;
        this.logger.info("send skipped", { ...ids(message), attempt: message.attempts, outcome: "cancelled" });
        return { ...base, status: "cancelled", unsent: true };
      case "expire":
        this.stats.expired++;
        this.logger.info("send skipped", { ...ids(message), attempt: message.attempts, outcome: "expired" });
        return { ...base, status: "expired", unsent: true };
      case "hand-back":
        if (decision.reason === "lease") {
          this.logger.warn("claim lapsed before sending", {
            ...ids(message),
            attempt: message.attempts,
            lease_left_ms: Math.max(0, message.leaseUntil - nowMs),
          });
        }
        return this.handBack(message, decision.at);
      case "send":
        break;
    }
    if (this.pausedUntilMs > nowMs) return this.handBack(message, this.pausedUntilMs);
    const template = mailing!.text;
    if (message.values === null && template.includes("{{")) {
      // The text gained placeholders after the claim read none: claimed again, with the values.
      return this.handBack(message, nowMs);
    }
    const text = message.values === null ? template : render(template, { ...message.values, phone_number: message.phone });
    const started = performance.now();
    const result = await this.gateway.send({ id: message.id, phone: message.phone, text }, this.abort.signal);
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const logFields = { ...ids(message), attempt: message.attempts, latency_ms: latencyMs };
    if (result.outcome === "sent") {
      this.stats.sent++;
      this.logger.info("send", { ...logFields, outcome: "sent" });
      if (result.providerId) return { ...base, status: "sent", providerMessageId: `${this.gateway.name}:${result.providerId}` };
      return { ...base, status: "sent" };
    }
    if (result.outcome === "failed") {
      this.stats.failed++;
      this.logger.info("send", { ...logFields, outcome: "failed", error: result.error });
      return { ...base, status: "failed", lastError: result.error };
    }
    let retryDelayMs = this.options.retryDelaySeconds * 1000;
    if (result.retryAfterMs !== undefined) {
      // The provider asked every sender to wait: this process at once, the others through the row.
      retryDelayMs = result.retryAfterMs;
      const until = this.clock.now().getTime() + result.retryAfterMs;
      if (until > this.pausedUntilMs) {
        this.pausedUntilMs = until;
        this.logger.warn("gateway asked to slow down; sending paused", { retry_after_ms: result.retryAfterMs });
        await this.rate.pause(until).catch((error) => this.logger.warn("sharing the pause failed", { error: String(error) }));
      }
    }
    const next = decideRetry(this.clock.now().getTime(), retryDelayMs, check!, mailing!.window, check!.timezone, this.windows);
    if (next.status === "expired") {
      this.stats.expired++;
      this.logger.info("send", { ...logFields, outcome: "expired", error: result.error });
      return { ...base, status: "expired", lastError: result.error };
    }
    this.stats.retried++;
    this.logger.info("send", { ...logFields, outcome: "retry", error: result.error });
    return { ...base, status: "retrying", nextAttemptAt: new Date(next.at).toISOString(), lastError: result.error };
  }

  /** Gives a claimed message back unsent, due again at `atMs` (null: held until resumed). */
  private handBack(message: ClaimedMessage, atMs: number | null): Completion {
    if (atMs !== null) this.handedBack++;
    return {
      id: message.id,
      attempts: message.attempts,
      status: message.waitingStatus,
      nextAttemptAt: atMs === null ? "infinity" : new Date(atMs).toISOString(),
      unsent: true,
    };
  }

  /** Waits `ms` (at least 5), or until something changes (a slot freed, stop): the caller looks again. */
  private async wait(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(5, ms)))), this.changes.next()]);
    clearTimeout(timer);
  }

  /** Resolves when nothing is queued or in flight (every result durable, or given up at stop). */
  async idle(): Promise<void> {
    while (this.inFlight > 0 || this.queue.length > 0) await this.changes.next();
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

  /**
   * Stops claiming, hands back what was claimed but not started, lets sends in flight finish and
   * their results land, and resolves within `deadlineMs` whatever happens (SPEC §6: exit within
   * LEASE_SECONDS). Sends still running when only a quarter of the deadline (at most 5 s) is left
   * are aborted (and retried later); results that cannot be written by the deadline (database
   * unreachable) are given up: those messages stay `sending` and their leases return them.
   */
  stop(deadlineMs = this.options.leaseSeconds * 900): Promise<void> {
    this.stopped ??= this.stopWithin(deadlineMs);
    return this.stopped;
  }

  private async stopWithin(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.cron?.stop();
    const abortTimer = setTimeout(() => this.abort.abort(), deadlineMs - Math.min(5000, deadlineMs / 4));
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"late">((resolve) => (deadlineTimer = setTimeout(() => resolve("late"), deadlineMs)));
    const settled = (async () => {
      this.changes.notify(); // a claim loop waiting for room sees `stopping`
      for (const unlisten of this.unlisteners.splice(0)) await unlisten().catch(() => {});
      // A claim still running lands in the queue after this; wait for it, then hand back the queue.
      if (this.ticking) await this.ticking;
      const nowMs = this.clock.now().getTime();
      for (const message of this.queue.splice(0)) {
        this.inFlight++;
        this.finish(message, this.handBack(message, nowMs));
      }
      await this.idle();
      return "settled" as const;
    })();
    const outcome = await Promise.race([settled, deadline]);
    clearTimeout(abortTimer);
    clearTimeout(deadlineTimer);
    if (outcome === "late") {
      this.results.abandon();
      this.logger.warn("stopped at the deadline with results unwritten; their leases return them", {
        messages: this.inFlight + this.queue.length,
      });
    }
  }
}

function ids(message: ClaimedMessage) {
  return { mailing_id: message.mailingId, message_id: message.id, client_id: message.clientId };
}
