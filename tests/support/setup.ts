/** Preloaded by bunfig.toml: hooks that run for the whole `bun test` process. */
import { afterAll, afterEach, beforeEach } from "bun:test";
import { beginTest, endTest } from "./lifetime";

/** Set by tests/support/db.ts once a test file has loaded it (so runs without databases skip this). */
type TestDatabases = { dropTemplates(): Promise<void> };
const databases = () => (globalThis as { [key: symbol]: TestDatabases | undefined })[Symbol.for("nst.test-databases")];

// Limits of their own, apart from each file's 60 s per test: giving back what a test left open can
// take long under heavy load. A hang still fails, after 10 minutes.
const hookLimitMs = 600_000;

beforeEach(beginTest);

// After the file's own afterEach hooks: closes what the test left open (lifetime.ts).
afterEach(endTest, hookLimitMs);

// The template databases live as long as the run; a run killed before this leaves one behind.
afterAll(() => databases()?.dropTemplates(), hookLimitMs);
