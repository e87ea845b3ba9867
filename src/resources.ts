/**
 * Where the files the service reads at run time live (drizzle/, templates/, static/, the OpenAPI
 * UI's assets): the repository when it runs from source, a directory the compiled executable
 * extracted them to (build/entry.ts, issue 13 item 4) when it runs as one file. Inside a compiled
 * executable `import.meta.url` points into Bun's virtual file system, where folders cannot be
 * listed or read by the libraries that need them (Drizzle's migrator, PGlite).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

export type EmbeddedRuntime = {
  /** the directory holding drizzle/, templates/, static/, node_modules/swagger-ui-dist/ */
  root: string;
  /**
   * PGlite's wasm modules and file-system bundle, which it otherwise looks for beside its own module
   * (loaded only when the embedded database is used: compiling the wasm takes a moment)
   */
  pglite?: () => Promise<PgliteAssets>;
};

export type PgliteAssets = { pgliteWasmModule: WebAssembly.Module; initdbWasmModule: WebAssembly.Module; fsBundle: Blob };

let runtime: EmbeddedRuntime | null = null;

/** Called by the compiled executable's entry before anything else is imported. */
export function useEmbeddedRuntime(value: EmbeddedRuntime): void {
  runtime = value;
}

/** An absolute path to a file or folder given relative to the repository root. */
export function resourcePath(relative: string): string {
  return join(runtime?.root ?? repoRoot, relative);
}

let fromPackage: Promise<Partial<PgliteAssets>> | null = null;

/**
 * PGlite's compiled wasm module and file-system bundle: the compiled executable's, or (from
 * source) read beside PGlite's module, once per process. main.ts asks for them early, so that the
 * compilation (about 140 ms of CPU, on Bun's threads) runs while the rest of the service loads;
 * PGlite left to itself would compile when opened. The initdb module is left to PGlite (only a
 * DATA_DIR without the shipped image needs it: db/embedded-image.ts).
 */
export function pgliteAssets(): Promise<Partial<PgliteAssets>> {
  if (runtime?.pglite) return runtime.pglite();
  return (fromPackage ??= (async () => {
    const dir = dirname(fileURLToPath(import.meta.resolve("@electric-sql/pglite")));
    const [wasm, data] = await Promise.all([Bun.file(join(dir, "pglite.wasm")).arrayBuffer(), Bun.file(join(dir, "pglite.data")).arrayBuffer()]);
    return { pgliteWasmModule: await WebAssembly.compile(wasm), fsBundle: new Blob([data]) };
  })());
}
