/**
 * The compiled executable's files (issue 13, item 4): `bun run build` (scripts/build.ts) embeds
 * drizzle/, templates/, static/, the OpenAPI UI's assets and PGlite's wasm and data files, and
 * lists them in a generated entry. At start the entry extracts them once per build into a cache
 * directory — $CACHE_DIRECTORY (systemd's CacheDirectory=), else $XDG_CACHE_HOME or ~/.cache, else
 * the system's temporary directory — under `notification-service/<build id>/`, because Drizzle's
 * migrator and the static file routes read folders, which Bun's virtual file system cannot list.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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
    const temporary = `${root}.tmp-${process.pid}`;
    try {
      // The shared temporary directory is a candidate: a tree someone else planted there (their SQL,
      // their templates) or may still change must not be run.
      mkdirSync(dirname(root), { recursive: true, mode: 0o700 });
      ownedPrivately(dirname(root));
      if (existsSync(join(root, ".complete"))) {
        ownedPrivately(root);
        return root;
      }
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

/** Throws unless `dir` is a real directory of this user that nobody else may write to. */
function ownedPrivately(dir: string): void {
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) {
    throw new Error(`${dir} belongs to another user or others may write to it`);
  }
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
