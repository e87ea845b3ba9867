/**
 * Issue 16, target 3: where the embedded service's memory goes. Runs the service (src/main.ts) in
 * this process and, every 2 s, writes one JSON line to stderr: VmRSS, JSC's heap (JS objects) and
 * its "extra" memory (ArrayBuffers, WASM memories), PGlite's WASM memory, and the most numerous
 * object types. On SIGUSR2 it writes a heap snapshot (bun:jsc, Safari/WebKit format) to
 * $HEAP_SNAPSHOT (default /tmp/embedded-heap.json).
 *
 *   DATA_DIR=… PROVIDER_URL=… PORT=… bun bench/experiments/embedded-heap.ts
 */
import { heapStats } from "bun:jsc";
import { readFileSync, writeFileSync } from "node:fs";

const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) >> 10;
const mb = (n: number) => Math.round(n / 2 ** 20);
let wasmBytes = () => NaN;
// The PGlite instance main.ts opens: found through the WebAssembly.Memory it creates.
const Memory = WebAssembly.Memory;
const memories: WebAssembly.Memory[] = [];
(WebAssembly as { Memory: unknown }).Memory = new Proxy(Memory, {
  construct(target, args) {
    const memory = Reflect.construct(target, args) as WebAssembly.Memory;
    memories.push(memory);
    return memory;
  },
});
wasmBytes = () => memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);
setInterval(() => {
  const h = heapStats();
  const top = Object.entries(h.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.error(JSON.stringify({ t: new Date().toISOString().slice(11, 19), rss: rssMb(), js_heap: mb(h.heapSize - h.extraMemorySize), extra: mb(h.extraMemorySize), wasm_memories: memories.length, wasm: mb(wasmBytes()), top }));
}, 2000).unref();
process.on("SIGUSR2", () => {
  const path = process.env.HEAP_SNAPSHOT || "/tmp/embedded-heap.json";
  writeFileSync(path, JSON.stringify(Bun.generateHeapSnapshot()));
  console.error(`heap snapshot written to ${path}`);
});
await import("../../src/main.ts");
