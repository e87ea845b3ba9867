/** Preloaded by bunfig.toml: hooks that run for the whole `bun test` process. */
import { afterAll, afterEach, beforeAll, beforeEach } from "bun:test";
import { beginTest, endTest } from "./lifetime";

/** Set by tests/support/db.ts once a test file has loaded it (so runs without databases skip this). */
type TestDatabases = { warmTemplates(): Promise<void>; dropTemplates(): Promise<void> };
const databases = () => (globalThis as { [key: symbol]: TestDatabases | undefined })[Symbol.for("nst.test-databases")];

// These hooks have limits of their own, apart from each file's 60 s per test: building the templates
// (PGlite's initdb and the migrations) took over 60 s under a load of ~30 on two cores. A hang
// still fails, after 10 minutes.
const hookLimitMs = 600_000;

// Once before the first file's beforeAll hooks (some make their app there), and before each test.
beforeAll(() => databases()?.warmTemplates(), hookLimitMs);
beforeEach(async () => {
  beginTest();
  await databases()?.warmTemplates();
}, hookLimitMs);

// After the file's own afterEach hooks: closes what the test left open (lifetime.ts).
afterEach(endTest, hookLimitMs);

// The template databases live as long as the run; a run killed before this leaves one behind.
afterAll(() => databases()?.dropTemplates(), hookLimitMs);
