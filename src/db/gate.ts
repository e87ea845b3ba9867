/**
 * At most `limit` tasks at once; the others wait their turn, in order, without holding anything.
 * Client writes go through one (see createServices): a mailing being planned holds them back
 * (LOCK TABLE clients IN SHARE MODE), and a write waiting on that lock keeps its pool connection.
 * Without a gate, a burst of client writes during a long planning would take every connection of
 * the pool, and reads, statistics and the dispatcher would wait too.
 */
export class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`gate limit must be a positive integer, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    // A finishing task hands its place straight to the next waiter (first come, first served).
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** tasks running now (for tests) */
  get running(): number {
    return this.active;
  }
}
