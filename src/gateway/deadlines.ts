/**
 * The timeout and shutdown abort of gateway requests, shared by the requests started within the
 * same few milliseconds: one AbortController, one timer and one listener on the shutdown signal
 * for each such group instead of for each request.
 *
 * Why: at the defaults on a loopback gateway each send paid for its own controller, its timer
 * (set and cleared) and a listener added to and removed from the shutdown signal. Against a bare
 * `fetch` loop those made most of the HTTP client's extra CPU per send (bench/NOTES.md, "service
 * CPU per message").
 *
 * The group's timer fires `timeoutMs` after the group's first request started, so no request
 * runs longer than `timeoutMs` (the lease bound, dispatcher.ts leaseNeededMs, counts on that); a
 * request that joined the group later gets up to `spanMs` less. A new group starts once the
 * current one is `spanMs` old (at most 2 % of the timeout, 20 ms at most), and a group whose
 * requests have all ended is dropped at once, its timer cleared: nothing outlives the last request.
 */
import type { SendResult } from "./gateway";

/** One group of requests: abort `signal` to end them all. */
export type Deadline = {
  readonly signal: AbortSignal;
  /** true once the timer aborted the group (as opposed to the shutdown signal) */
  readonly timedOut: boolean;
};

type Group = {
  controller: AbortController;
  timedOut: boolean;
  timer: ReturnType<typeof setTimeout>;
  /** requests of this group not yet ended */
  active: number;
  /** a request starting before this (performance.now() ms) joins this group */
  openUntil: number;
  shutdown: AbortSignal | undefined;
  onShutdown: (() => void) | null;
  readonly signal: AbortSignal;
};

export class Deadlines {
  private current: Group | null = null;
  private readonly spanMs: number;

  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.spanMs = Math.min(20, timeoutMs / 50);
  }

  /**
   * A deadline for a request starting now: its signal aborts `timeoutMs` (less up to `spanMs`)
   * from now, or when `shutdown` aborts. Pair with `end()` once the request is over, body included.
   */
  start(shutdown?: AbortSignal): Deadline {
    const now = this.now();
    let group = this.current;
    if (group === null || now >= group.openUntil || group.shutdown !== shutdown || group.controller.signal.aborted) {
      group = this.open(now, shutdown);
    }
    group.active++;
    return group;
  }

  /**
   * Runs one request (`work`: the fetch and the reading of its answer) under a deadline. A throw
   * comes back as a retryable result saying why: the timeout, the shutdown, or the gateway out of
   * reach. The HTTP gateway and the providers' adapters (exchange.ts) share this mapping.
   */
  async run<T>(shutdown: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T | Extract<SendResult, { outcome: "retry" }>> {
    const deadline = this.start(shutdown);
    try {
      return await work(deadline.signal);
    } catch (error) {
      if (deadline.timedOut) return { outcome: "retry", error: `gateway timed out after ${this.timeoutMs} ms` };
      if (shutdown?.aborted) return { outcome: "retry", error: "send aborted by shutdown" };
      return { outcome: "retry", error: `gateway unreachable: ${(error as Error).message}` };
    } finally {
      this.end(deadline);
    }
  }

  /** The request given this deadline is over. */
  end(deadline: Deadline): void {
    const group = deadline as Group;
    if (--group.active > 0) return;
    clearTimeout(group.timer);
    if (group.onShutdown) group.shutdown!.removeEventListener("abort", group.onShutdown);
    group.onShutdown = null;
    if (this.current === group) this.current = null;
  }

  private open(now: number, shutdown: AbortSignal | undefined): Group {
    const controller = new AbortController();
    const group: Group = {
      controller,
      signal: controller.signal,
      timedOut: false,
      active: 0,
      openUntil: now + this.spanMs,
      shutdown,
      onShutdown: null,
      timer: setTimeout(() => {
        group.timedOut = true;
        controller.abort();
      }, this.timeoutMs),
    };
    if (shutdown) {
      group.onShutdown = () => controller.abort();
      shutdown.addEventListener("abort", group.onShutdown, { once: true });
    }
    this.current = group;
    return group;
  }
}
