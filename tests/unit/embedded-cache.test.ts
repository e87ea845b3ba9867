/**
 * The compiled executable extracts its migrations, templates and static files into a cache
 * directory and runs what it finds there (issue 13, item 4). The last fallback is the shared
 * temporary directory: a tree there that another user owns, or that others may write to, could hold
 * their SQL and templates, so it is never used; the next candidate (or an error) is taken instead.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractEmbedded } from "../../src/embedded";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), "nst-embed-"));
  dirs.push(d);
  return d;
}

/** An embedded file set of one migration, as the build lists it. */
function files(): Record<string, string> {
  const source = join(scratch(), "0000.sql");
  writeFileSync(source, "select 'ours';");
  return { "drizzle/0000.sql": source };
}

/** A cache root where someone else prepared `notification-service/<build>/` with their own SQL. */
function planted(build: string, spoil: (dir: string) => void): string {
  const base = scratch();
  const tree = join(base, "notification-service", build);
  mkdirSync(join(tree, "drizzle"), { recursive: true });
  writeFileSync(join(tree, "drizzle", "0000.sql"), "drop table users;");
  writeFileSync(join(tree, ".complete"), build);
  spoil(join(base, "notification-service"));
  return base;
}

test("a planted tree writable by others is not used", () => {
  const base = planted("b1", (dir) => chmodSync(dir, 0o777));
  const good = scratch();
  const root = extractEmbedded(files(), "b1", { CACHE_DIRECTORY: base, XDG_CACHE_HOME: good });
  expect(readFileSync(join(root, "drizzle", "0000.sql"), "utf8")).toBe("select 'ours';");
});

test.skipIf(process.getuid?.() !== 0)("a planted tree owned by another user is not used", () => {
  const base = planted("b2", (dir) => chownSync(dir, 65534, 65534));
  const good = scratch();
  const root = extractEmbedded(files(), "b2", { CACHE_DIRECTORY: base, XDG_CACHE_HOME: good });
  expect(readFileSync(join(root, "drizzle", "0000.sql"), "utf8")).toBe("select 'ours';");
});

test("an own, private cache is extracted once and reused", () => {
  const base = scratch();
  const first = extractEmbedded(files(), "b3", { CACHE_DIRECTORY: base });
  expect(readFileSync(join(first, "drizzle", "0000.sql"), "utf8")).toBe("select 'ours';");
  expect(extractEmbedded(files(), "b3", { CACHE_DIRECTORY: base })).toBe(first);
});
