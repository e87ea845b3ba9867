/** src/ops/memory.ts: when the embedded process's memory guard runs a full collection. */
import { describe, expect, test } from "bun:test";
import { MemoryGuard } from "../../src/ops/memory";

const MB = 2 ** 20;

/** A guard over an RSS and a clock the test sets; `collect` sets the RSS to `afterCollect` (null: unchanged). */
function guardOver(rss: number) {
  const state = { rss, afterCollect: null as number | null, now: 0, collections: [] as number[] };
  const guard = new MemoryGuard({
    rssBudgetBytes: 250 * MB,
    minGapMs: 1_000,
    maxGapMs: 8_000,
    rss: () => state.rss,
    now: () => state.now,
    collect: () => {
      state.collections.push(state.now);
      if (state.afterCollect !== null) state.rss = state.afterCollect;
    },
  });
  /** `guard.check()` every 250 ms for `ms` */
  const run = (ms: number) => {
    for (let t = 0; t < ms; t += 250) {
      guard.check();
      state.now += 250;
    }
  };
  return { guard, state, run };
}

describe("MemoryGuard", () => {
  test("under the budget: no collection", () => {
    const { state, run } = guardOver(249 * MB);
    run(10_000);
    expect(state.collections).toEqual([]);
  });

  test("above it: a full collection at once, then at most one per second while each gives memory back", () => {
    const { guard, state, run } = guardOver(320 * MB);
    state.afterCollect = 270 * MB; // still above the budget, but 50 MB given back
    expect(guard.check()).toBe(true);
    expect(state.collections).toEqual([0]);
    // The garbage comes back (a dispatch: 10 MB per check): collected once a second, not at every check.
    state.now = 250;
    for (let i = 0; i < 16; i++) {
      state.rss += 10 * MB;
      guard.check();
      state.now += 250;
    }
    expect(state.collections).toEqual([0, 1000, 2000, 3000, 4000]);
  });

  test("collections that give nothing back: the gap doubles up to the maximum, and resets under the budget", () => {
    const { state, run } = guardOver(300 * MB); // resident for another reason: collecting does not lower it
    run(40_000);
    // 0, then gaps of 2, 4, 8 (the maximum), 8, … seconds
    expect(state.collections).toEqual([0, 2000, 6000, 14000, 22000, 30000, 38000]);
    state.rss = 200 * MB;
    run(1_000);
    state.rss = 300 * MB;
    const before = state.collections.length;
    run(1_250);
    expect(state.collections.length).toBe(before + 1);
  });

  test("a resident set that sits at the budget (a collection dips it just under, it creeps back): backs off all the same", () => {
    // Memory no collection frees (PGlite's grown WASM memory, …) holds the RSS at 252 MB; each
    // collection gives 4 MB back (nothing, by the 8 MB rule), which the next checks allocate again.
    const { guard, state } = guardOver(252 * MB);
    state.afterCollect = 248 * MB;
    for (let t = 0; t < 40_000; t += 250) {
      guard.check();
      state.now += 250;
      state.rss = Math.min(252 * MB, state.rss + 2 * MB);
    }
    // As when the RSS stays above the budget: 0, 2, 6, 14, 22, 30, 38 s — not one a second.
    expect(state.collections.length).toBeLessThanOrEqual(7);
  });

  test("with the process's own RSS and Bun.gc: a budget below it collects, and reports the pause", () => {
    let pause = -1;
    const guard = new MemoryGuard({ rssBudgetBytes: 1 * MB, minGapMs: 60_000, maxGapMs: 60_000, rss: () => process.memoryUsage.rss(), now: () => performance.now(), collect: () => Bun.gc(true), onCollect: (c) => (pause = c.pauseMs) });
    expect(guard.check()).toBe(true);
    expect(pause).toBeGreaterThanOrEqual(0);
    expect(guard.check()).toBe(false); // within the gap
  });
});
