/**
 * The compiled executable's files (issue 13, item 4): `bun run build` (scripts/build.ts) embeds
 * drizzle/, templates/, static/, the OpenAPI UI's assets and PGlite's wasm and data files, and
 * lists them in a generated entry. At start the entry extracts them once per build into a cache
 * directory — $CACHE_DIRECTORY (systemd's CacheDirectory=), else $XDG_CACHE_HOME or ~/.cache, else
 * the system's temporary directory — under `notification-service/<build id>/`, because Drizzle's
 * migrator and the static file routes read folders, which Bun's virtual file system cannot list.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { EmbeddedRuntime } from "./resources";

/** Candidate cache roots, best first. */
function cacheRoots(env: Record<string, string | undefined>): string[] {
  const roots: string[] = [];
  if (env.CACHE_DIRECTORY) roots.push(env.CACHE_DIRECTORY.split(":")[0]!);
  if (env.XDG_CACHE_HOME) roots.push(env.XDG_CACHE_HOME);
  const home = env.HOME || homedir();
  if (home) roots.push(join(home, ".cache"));
  roots.push(tmpdir());
  return roots;
}

/**
 * Writes `files` (relative path → path of the embedded file) under a directory named by the build,
 * unless a previous start did; returns that directory. Written to a temporary name first and
 * renamed, so a process never sees half a tree (two starting at once both end with a whole one).
 */
export function extractEmbedded(files: Record<string, string>, buildId: string, env: Record<string, string | undefined>): string {
  let lastError: unknown;
  for (const base of cacheRoots(env)) {
    const root = join(base, "notification-service", buildId);
    if (existsSync(join(root, ".complete"))) return root;
    const temporary = `${root}.tmp-${process.pid}`;
    try {
      for (const [relative, embedded] of Object.entries(files)) {
        const target = join(temporary, relative);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, readFileSync(embedded));
      }
      writeFileSync(join(temporary, ".complete"), buildId);
      try {
        renameSync(temporary, root);
      } catch (error) {
        // Another process finished first: its tree is as good as ours.
        rmSync(temporary, { recursive: true, force: true });
        if (!existsSync(join(root, ".complete"))) throw error;
      }
      return root;
    } catch (error) {
      lastError = error;
      rmSync(temporary, { recursive: true, force: true });
    }
  }
  throw new Error(`could not extract the embedded files into a cache directory: ${String(lastError)}`);
}

/** The runtime description for resources.ts, PGlite's files read from the extracted tree when needed. */
export function embeddedRuntime(root: string, pgliteDir: string): EmbeddedRuntime {
  let loading: ReturnType<NonNullable<EmbeddedRuntime["pglite"]>> | null = null;
  return {
    root,
    pglite: () =>
      (loading ??= (async () => ({
        pgliteWasmModule: await WebAssembly.compile(readFileSync(join(root, pgliteDir, "pglite.wasm"))),
        initdbWasmModule: await WebAssembly.compile(readFileSync(join(root, pgliteDir, "initdb.wasm"))),
        fsBundle: new Blob([readFileSync(join(root, pgliteDir, "pglite.data"))]),
      }))()),
  };
}
