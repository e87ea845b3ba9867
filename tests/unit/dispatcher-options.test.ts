/** Dispatcher options that could never work are refused when it is built, not discovered as a hang. */
import { describe, expect, test } from "bun:test";
import { FixedClock } from "../../src/clock";
import type { Database } from "../../src/db/client";
import { Dispatcher, type DispatcherOptions } from "../../src/dispatch/dispatcher";
import type { Gateway } from "../../src/gateway/gateway";
import { memoryLogger } from "../../src/ops/logger";

const base: DispatcherOptions = { concurrency: 10, claimBatch: 50, leaseSeconds: 60, retryDelaySeconds: 300, tick: null };
const build = (options: Partial<DispatcherOptions>) =>
  new Dispatcher({} as Database, {} as Gateway, new FixedClock("2026-12-01T00:00:00Z"), memoryLogger(), { ...base, ...options });

describe("Dispatcher options", () => {
  test("sensible options build a dispatcher", () => {
    expect(build({})).toBeInstanceOf(Dispatcher);
    expect(build({ gatewayConcurrency: 1, sendTimeoutMs: 30_000 })).toBeInstanceOf(Dispatcher);
  });

  test("no send slot or no gateway request at all is refused", () => {
    expect(() => build({ concurrency: 0 })).toThrow(RangeError);
    expect(() => build({ gatewayConcurrency: 0 })).toThrow(RangeError);
    expect(() => build({ concurrency: 2.5 })).toThrow(RangeError);
  });

  test("a send timeout that leaves no time to send within the lease is refused (every message would be handed back)", () => {
    // needs timeout + min(5 s, lease / 4) < lease
    expect(build({ leaseSeconds: 60, sendTimeoutMs: 54_999 })).toBeInstanceOf(Dispatcher);
    expect(() => build({ leaseSeconds: 60, sendTimeoutMs: 55_000 })).toThrow(RangeError);
    expect(() => build({ leaseSeconds: 3, sendTimeoutMs: 3_000 })).toThrow(RangeError);
  });
});
