/**
 * The embedded database's memory budget (issue 16, target 3: a 100,000-client mailing in ≤ 300 MB
 * RSS). JavaScriptCore starts a collection when the bytes allocated since the last one exceed a
 * budget that grows with the heap's size, and that size counts "extra" memory: ArrayBuffers and
 * WebAssembly memories. PGlite's WASM memory (128 MB) and its buffers make that about 280 MB
 * before the service has allocated anything, so JSC let about as much garbage pile up (PGlite's
 * decoding of protocol rows, the import's statement parameters, the sends' HTTP objects) before
 * collecting: peaks of 450–470 MB against a live JS heap of 10–40 MB.
 *
 * `gcMaxHeapSize` replaces that budget by a fixed one: a collection at least every 32 MB
 * allocated, whatever the extra memory. JSC reads its options once, when Bun starts, so an
 * embedded process replaces itself at start-up with the variable set (ops/http-cap.ts, execve: same
 * pid, nothing loaded yet). With DATABASE_URL (no WASM memory in the process) nothing changes.
 * An operator's own BUN_JSC_gcMaxHeapSize is kept.
 */

/** Bytes JSC may allocate between two collections in an embedded process (BUN_JSC_gcMaxHeapSize). */
export const embeddedGcBudgetBytes = 32 * 2 ** 20;

/** The BUN_JSC_* variables an embedded process starts with; none with DATABASE_URL. */
export function embeddedJscSettings(databaseUrl: string | null): Record<string, string> {
  return databaseUrl ? {} : { BUN_JSC_gcMaxHeapSize: String(embeddedGcBudgetBytes) };
}

/**
 * What the fixed budget does not catch (measured, 100,000 sends with it alone: dispatch peaks of
 * 350–420 MB RSS, back to ~275 MB after JSC's own next full collection): objects still in use
 * when a young-generation collection ran (a send in flight, a claim's rows) move to the old
 * generation and die there, and, likely, memory that JSC does not count (the native buffers of
 * `fetch` requests and answers, freed when their objects are collected). JSC collects the old
 * generation only when the whole heap, extra memory included, has grown by about half again. So
 * the embedded process reads its RSS every `everyMs` and, above `rssBudgetBytes`, runs a full
 * collection — at most one per `minGapMs`, and less often while collections give no memory back
 * (the gap doubles up to `maxGapMs`: a resident set that stays high for another reason is not
 * collected again and again). Timers do not fire inside one long PGlite statement; the fixed
 * budget above covers those. Cost (bench/NOTES.md, 2026-11-30 "Embedded RSS ≤ 300 MB"): pauses of
 * 69–103 ms median at load 7–11, a few per cent more CPU per send.
 */
export type MemoryGuardOptions = {
  everyMs: number;
  rssBudgetBytes: number;
  minGapMs: number;
  maxGapMs: number;
  /** the process's resident set in bytes (process.memoryUsage.rss) */
  rss: () => number;
  /** a full, synchronous collection (Bun.gc(true)) */
  collect: () => void;
  now: () => number;
  onCollect?: (collection: { rssBytes: number; pauseMs: number; gapMs: number }) => void;
};

export class MemoryGuard {
  private last = -Infinity;
  private gap: number;
  /** the RSS when the previous collection ran, until the check after it has looked at its effect */
  private before: number | null = null;
  constructor(private readonly options: Omit<MemoryGuardOptions, "everyMs">) {
    this.gap = options.minGapMs;
  }

  /** One check: collects (and returns true) when the RSS is above the budget and the gap has passed. */
  check(): boolean {
    const rss = this.options.rss();
    if (this.before !== null) {
      // The first look after a collection: it gave memory back (keep collecting as needed), or not (wait longer).
      this.gap = rss < this.before - effectiveDropBytes ? this.options.minGapMs : Math.min(this.options.maxGapMs, this.gap * 2);
      this.before = null;
    }
    if (rss <= this.options.rssBudgetBytes) {
      // Only well under the budget: a resident set that sits at it, dipped under by a collection
      // that gave next to nothing back, keeps its longer gap.
      if (rss <= this.options.rssBudgetBytes - effectiveDropBytes) this.gap = this.options.minGapMs;
      return false;
    }
    if (this.options.now() - this.last < this.gap) return false;
    const started = performance.now();
    this.options.collect();
    const pauseMs = performance.now() - started;
    this.last = this.options.now();
    this.before = rss;
    this.options.onCollect?.({ rssBytes: rss, pauseMs, gapMs: this.gap });
    return true;
  }
}

/** A collection that did not lower the RSS by this much gave nothing back. */
const effectiveDropBytes = 8 * 2 ** 20;

/**
 * Defaults of the embedded process: idle it holds ~190 MB, so 230 MB leaves ~70 MB for what grows
 * between two checks and during a collection before 300 MB (measured peaks 279 MB; with 250 MB,
 * checks every 250 ms and a 0.5 s gap: 294–312 MB, higher the faster the sends).
 */
export const embeddedGuard = { everyMs: 100, rssBudgetBytes: 230 * 2 ** 20, minGapMs: 250, maxGapMs: 30_000 };

/** Runs a MemoryGuard on a timer (unref'd); returns the function that stops it. */
export function startMemoryGuard(options: MemoryGuardOptions): () => void {
  const guard = new MemoryGuard(options);
  const timer = setInterval(() => guard.check(), options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
