/**
 * A diagnostic for memory questions (the soak, scripts/soak.ts): with HEAP_STATS_FILE set, each
 * SIGUSR2 appends one JSON line to that file with the process's memory before and after a full,
 * synchronous garbage collection (`Bun.gc(true)`): RSS, `process.memoryUsage()`, and JavaScriptCore's
 * `heapStats()` — the live heap and the live objects by type. Comparing two lines tells JS objects
 * that pile up (a map, a cache, listeners) from a heap that only grew its capacity or an allocator
 * that keeps freed pages.
 *
 * Off unless the variable is set: nothing is installed, no route serves it, and SIGUSR2 keeps its
 * default action. A forced full collection pauses the process (tens of ms): not for production use
 * beyond a one-off look.
 */
import { appendFileSync } from "node:fs";
import { heapStats } from "bun:jsc";

export type HeapSample = {
  at: string;
  /** before the collection */
  before: NodeJS.MemoryUsage;
  /** after `Bun.gc(true)` */
  after: NodeJS.MemoryUsage;
  gcMs: number;
  heapSize: number;
  heapCapacity: number;
  extraMemorySize: number;
  objectCount: number;
  protectedObjectCount: number;
  objectTypeCounts: Record<string, number>;
};

/** One sample now (a full collection first). */
export function heapSample(): HeapSample {
  const before = process.memoryUsage();
  const t0 = performance.now();
  Bun.gc(true);
  const gcMs = Math.round((performance.now() - t0) * 10) / 10;
  const after = process.memoryUsage();
  const stats = heapStats();
  return {
    at: new Date().toISOString(),
    before,
    after,
    gcMs,
    heapSize: stats.heapSize,
    heapCapacity: stats.heapCapacity,
    extraMemorySize: stats.extraMemorySize,
    objectCount: stats.objectCount,
    protectedObjectCount: stats.protectedObjectCount,
    objectTypeCounts: stats.objectTypeCounts,
  };
}

/** On SIGUSR2, appends a sample to `file`; returns what removes the handler. */
export function installHeapStats(file: string, onError: (error: unknown) => void): () => void {
  const handler = () => {
    try {
      appendFileSync(file, `${JSON.stringify(heapSample())}\n`);
    } catch (error) {
      onError(error);
    }
  };
  process.on("SIGUSR2", handler);
  return () => void process.off("SIGUSR2", handler);
}
