/**
 * The embedded database (PGlite) runs PostgreSQL in single-user mode, where no autovacuum worker
 * ever runs (issue 16, target 3): the service analyses and vacuums its tables itself
 * (src/db/embedded-maintenance.ts), and opens PGlite with settings for data held in memory.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { type Database, openPglite } from "../../src/db/client";
import { maintainOnce, tablesDue } from "../../src/db/embedded-maintenance";
import { waitFor } from "../support/wait";

let dir: string;
let database: Database;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nst-maint-"));
  database = await openPglite(join(dir, "data"));
  await database.migrate();
}, 300_000);

afterAll(async () => {
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});

const reltuples = async (table: string) =>
  (await database.rows<{ n: number }>(sql`select reltuples::int as n from pg_class where relname = ${table}`))[0]!.n;

test("the embedded database opens with its own settings", async () => {
  const [row] = await database.rows<{ cost: string; buffers: string }>(
    sql`select current_setting('random_page_cost') as cost, current_setting('shared_buffers') as buffers`,
  );
  expect(row).toEqual({ cost: "1.1", buffers: "16MB" });
});

test("a table changed in bulk is analysed by the maintenance pass, and nothing is due after it", async () => {
  await database.rows(sql`
    insert into clients (phone_number, operator_code, tag, timezone)
    select '79' || lpad(g::text, 9, '0'), '900', '', 'UTC' from generate_series(1, 3000) g`);
  // No autovacuum in PGlite: the planner still knows nothing of the 3,000 rows.
  expect(await reltuples("clients")).toBeLessThan(0);
  // The statistics counters reach the shared view a moment after the statement (at most about 1 s).
  await waitFor(async () => ((await tablesDue(database)).some((t) => t.relname === "clients") ? true : undefined), 10_000, "clients to be due");

  const done = await maintainOnce(database);
  expect(done.find((t) => t.relname === "clients")).toBeDefined();
  expect(await reltuples("clients")).toBe(3000);
  expect((await tablesDue(database)).map((t) => t.relname)).not.toContain("clients");
});

test("dead rows left by updates are vacuumed", async () => {
  await database.rows(sql`update clients set tag = 'x'`);
  await waitFor(async () => ((await tablesDue(database)).some((t) => t.relname === "clients" && t.vacuum) ? true : undefined), 10_000, "clients to be due for a vacuum");
  await maintainOnce(database);
  const [stats] = await database.rows<{ dead: number; vacuumed: boolean }>(
    sql`select n_dead_tup::int as dead, last_vacuum is not null as vacuumed from pg_stat_user_tables where relname = 'clients'`,
  );
  expect(stats).toEqual({ dead: 0, vacuumed: true });
});
