/**
 * Where the files the service reads at run time live (drizzle/, templates/, static/, the OpenAPI
 * UI's assets): the repository when it runs from source, a directory the compiled executable
 * extracted them to (build/entry.ts, issue 13 item 4) when it runs as one file. Inside a compiled
 * executable `import.meta.url` points into Bun's virtual file system, where folders cannot be
 * listed or read by the libraries that need them (Drizzle's migrator, PGlite).
 */
import { join } from "node:path";
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

/** PGlite options for the compiled executable (empty from source: PGlite finds its own files). */
export async function pgliteAssets(): Promise<Partial<PgliteAssets>> {
  return runtime?.pglite ? runtime.pglite() : {};
}
