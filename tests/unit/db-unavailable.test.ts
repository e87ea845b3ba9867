/**
 * An API request that fails because the database cannot be reached is a 503 problem with
 * Retry-After, not a 500 "unexpected error" (SPEC §8: a 500 is a bug). The error here is the real
 * one: Drizzle over postgres.js against a port nobody listens on.
 */
import { describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { databaseUnavailable, retryAfterSeconds } from "../../src/http/unavailable";
import { renderError } from "../../src/http/errors";
import { memoryLogger } from "../../src/ops/logger";

async function refusedQueryError(): Promise<unknown> {
  const client = postgres("postgres://postgres@127.0.0.1:1/none", { max: 1, connect_timeout: 2 });
  try {
    await drizzle(client).execute(sql`select 1`);
    throw new Error("the query should have failed");
  } catch (error) {
    return error;
  } finally {
    await client.end({ timeout: 0 });
  }
}

describe("database unreachable", () => {
  test("a request whose query cannot reach the database answers 503 with Retry-After, logged as a warning", async () => {
    const error = await refusedQueryError();
    expect(databaseUnavailable(error)).toBe(true);
    const logger = memoryLogger();
    const response = renderError("UNKNOWN", error, new Request("http://localhost/api/v1/clients"), logger);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe(String(retryAfterSeconds));
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    expect(await response.json()).toMatchObject({ status: 503, title: "Service Unavailable" });
  });

  test("other errors stay 500: a unique violation or a plain bug is not an outage", () => {
    expect(databaseUnavailable(Object.assign(new Error("duplicate key"), { code: "23505" }))).toBe(false);
    expect(databaseUnavailable(new TypeError("x is undefined"))).toBe(false);
    expect(databaseUnavailable(Object.assign(new Error("admin shutdown"), { code: "57P01" }))).toBe(true);
    expect(databaseUnavailable(Object.assign(new Error("wrapped"), { cause: { code: "08006" } }))).toBe(true);
  });
});
