/**
 * The injected "now". Production uses the system clock; tests use a fixed clock they move by hand,
 * so "retry after five minutes" is proven without sleeping (SPEC §6, issue 3).
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that stands still until told to move. */
export class FixedClock implements Clock {
  private ms: number;
  constructor(start: Date | string) {
    this.ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  set(to: Date | string): void {
    this.ms = new Date(to).getTime();
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}
