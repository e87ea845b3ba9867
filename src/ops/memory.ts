/**
 * The embedded database's memory budget (issue 16, target 3: a 100,000-client mailing in ≤ 300 MB
 * RSS). JavaScriptCore starts a collection when the bytes allocated since the last one exceed a
 * budget that grows with the heap's size, and that size counts "extra" memory: ArrayBuffers and
 * WebAssembly memories. PGlite's WASM memory (128 MB) and its buffers make that about 280 MB
 * before the service has allocated anything, so JSC let about as much garbage pile up (PGlite's
 * decoding of protocol rows, the import's statement parameters, the sends' HTTP objects) before
 * collecting: peaks of 450–470 MB against a live JS heap of 10–40 MB.
 *
 * `gcMaxHeapSize` replaces that budget by a fixed one: a collection at least every 64 MB
 * allocated, whatever the extra memory. JSC reads its options once, when Bun starts, so an
 * embedded process replaces itself at start-up with the variable set (ops/http-cap.ts, execve: same
 * pid, nothing loaded yet). With DATABASE_URL (no WASM memory in the process) nothing changes.
 * An operator's own BUN_JSC_gcMaxHeapSize is kept.
 */

/** Bytes JSC may allocate between two collections in an embedded process (BUN_JSC_gcMaxHeapSize). */
export const embeddedGcBudgetBytes = 64 * 2 ** 20;

/** The BUN_JSC_* variables an embedded process starts with; none with DATABASE_URL. */
export function embeddedJscSettings(databaseUrl: string | null): Record<string, string> {
  return databaseUrl ? {} : { BUN_JSC_gcMaxHeapSize: String(embeddedGcBudgetBytes) };
}
