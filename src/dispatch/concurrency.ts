/**
 * The two waiting primitives the dispatcher needs, instead of hand-made waiter queues.
 */

/** A counting semaphore; a released permit goes straight to the longest waiter (first come, first served). */
export class Semaphore {
  private held = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError(`permits must be a positive integer, got ${permits}`);
  }

  /** Resolves once a permit is held by the caller. */
  acquire(): Promise<void> {
    if (this.held < this.permits) {
      this.held++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held--;
  }

  /** permits held right now */
  get inUse(): number {
    return this.held;
  }
}

/**
 * "Something changed, look again": `next()` resolves at the following `notify()`. Callers re-check
 * their own condition in a loop (`while (!ready()) await changes.next()`), so a notification that
 * came before the wait began cannot be missed: the condition already shows it.
 */
export class ChangeSignal {
  private waiters: (() => void)[] = [];

  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
