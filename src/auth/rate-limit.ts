/**
 * Sign-in attempt limits (SPEC §9): failures counted per key in a sliding window, in memory (per
 * process) and bounded: when full, the key seen longest ago is dropped first.
 */
import type { Clock } from "../clock";

export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly clock: Clock,
    readonly limit: number,
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  private recent(key: string): number[] {
    const since = this.clock.now().getTime() - this.windowMs;
    const times = (this.failures.get(key) ?? []).filter((t) => t > since);
    if (times.length === 0) this.failures.delete(key);
    return times;
  }

  /** True while the key has used up its failures within the window. */
  blocked(key: string): boolean {
    return this.recent(key).length >= this.limit;
  }

  /** Seconds until the oldest failure leaves the window (for Retry-After). */
  retryAfterSeconds(key: string): number {
    const times = this.recent(key);
    if (times.length === 0) return 0;
    return Math.max(1, Math.ceil((times[0]! + this.windowMs - this.clock.now().getTime()) / 1000));
  }

  fail(key: string): void {
    const times = this.recent(key);
    times.push(this.clock.now().getTime());
    // Re-inserting moves the key to the end: Map order is then least recently failed first.
    this.failures.delete(key);
    this.failures.set(key, times.slice(-this.limit));
    while (this.failures.size > this.maxKeys) this.failures.delete(this.failures.keys().next().value!);
  }

  /** Takes back the newest failure (an attempt counted up front that succeeded). */
  forgive(key: string): void {
    const times = this.failures.get(key);
    times?.pop();
    if (times?.length === 0) this.failures.delete(key);
  }

  reset(key: string): void {
    this.failures.delete(key);
  }

  get size(): number {
    return this.failures.size;
  }
}
