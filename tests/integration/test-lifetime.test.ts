/**
 * The test harness itself (tests/support/lifetime.ts): a test that timed out while its app was being
 * set up must not get the app later, nor leave it open, nor reach the next test's app. Bun cannot
 * stop a timed-out test, so these end the running test's lifetime by hand, as the preload does when a
 * test ends, and start a new one.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { testApp } from "../support/app";
import { testEngine } from "../support/engine";
import { freshDatabase } from "../support/db";
import { beginTest, currentOwner, endTest } from "../support/lifetime";

setDefaultTimeout(60_000);

describe("what a test opened ends with the test", () => {
  test("an engine whose test ended during its set-up is closed, not handed over, and the next test's database is clean", async () => {
    const late = testEngine("pglite");
    await endTest(); // the test "timed out" while the set-up ran
    beginTest(); // the next test
    await expect(late).rejects.toThrow(/ended .* before its set-up was ready/);
    // What the late set-up made went back clean: the next test's app starts empty, ids from 1.
    const next = await testApp("pglite");
    try {
      const made = await next.request("POST", "/api/v1/clients", { phone_number: "79101234567", timezone: "UTC", tag: "" });
      expect(made.status).toBe(201);
      expect(made.body.id).toBe(1);
    } finally {
      await next.close();
    }
  });

  test("an app its test left open is closed when the test ends, and refuses requests from a body that ran on", async () => {
    const app = await testApp("pglite");
    const database = await freshDatabase("pglite");
    expect(currentOwner()?.open.size).toBe(3); // the app, its database and the bare one
    await endTest();
    beginTest();
    await expect(app.request("GET", "/api/v1/clients")).rejects.toThrow(/test that made this app has ended/);
    await expect(database.database.rows(sql`select 1`)).rejects.toThrow(); // its handle is revoked
  });
});
