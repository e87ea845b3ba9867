/** Assertions shared by the API tests: RFC 9457 problem documents and database snapshots. */
import { expect } from "bun:test";
import { sql } from "drizzle-orm";
import type { Database } from "../../src/db/client";
import type { Reply } from "../support/app";

/** The reply is a problem document with this status whose `errors` name `field` (one of them, if several). */
export function expectProblem(reply: Reply, status: number, field?: string | string[]): void {
  const context = `${reply.status} ${reply.text.slice(0, 300)}`;
  expect(reply.status, context).toBe(status);
  expect(reply.headers.get("content-type") ?? "", context).toStartWith("application/problem+json");
  // Not toMatchObject with expect.any(): on Bun 1.4 it writes the matchers into the received object.
  expect(typeof reply.body?.type, context).toBe("string");
  expect(typeof reply.body?.title, context).toBe("string");
  expect(typeof reply.body?.detail, context).toBe("string");
  expect(reply.body.status, context).toBe(status);
  expect(Array.isArray(reply.body.errors), context).toBe(true);
  if (field !== undefined) {
    const wanted = Array.isArray(field) ? field : [field];
    const named: string[] = reply.body.errors.map((e: { field: string }) => e.field);
    expect(named.some((f) => wanted.includes(f)), `${context}: expected a field among ${wanted.join(", ")}`).toBe(true);
    for (const e of reply.body.errors) expect(typeof e.message, context).toBe("string");
  }
}

const tables = ["clients", "mailings", "messages", "api_tokens", "mailing_counts", "mailing_count_deltas"] as const;

/** Every row of the tables the API writes, as text, in a stable order: equal snapshots, unchanged database. */
export async function snapshot(database: Database): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of tables) {
    const [row] = await database.rows<{ n: number; rows: string }>(
      sql.raw(
        `select count(*)::int as n, coalesce(string_agg(t::text, E'\\n' order by t::text), '') as rows from ${table} t`,
      ),
    );
    out[table] = `${row!.n} rows\n${row!.rows}`;
  }
  return out;
}
