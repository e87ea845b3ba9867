/**
 * SPEC §7: sending never blocks the API. With the embedded database (PGlite, in-process) and the
 * built-in sandbox (answers at once), every step of a send resolved as a microtask, so a large
 * mailing starved timers and sockets: the HTTP server did not answer until it was all sent (a
 * fresh `bun run start` with 300,000 clients stopped answering for ~110 s).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { Dispatcher } from "../../src/dispatch/dispatcher";
import { SandboxGateway } from "../../src/gateway/sandbox";
import { testApp } from "../support/app";
import { backends } from "../support/db";

setDefaultTimeout(120_000);

for (const backend of backends()) {
  describe(`[${backend}] the event loop while a large mailing is sent`, () => {
    test("a timer set when sending starts fires long before the last message is sent", async () => {
      const t = await testApp(backend, { now: "2026-12-01T10:00:00Z" });
      await t.database.db.execute(sql`insert into clients (phone_number, operator_code, tag, timezone, created_at, updated_at)
        select '7910' || lpad(g::text, 7, '0'), '910', '', 'UTC', now(), now() from generate_series(1, 1000) g`);
      const created = await t.request("POST", "/api/v1/mailings", { text: "x", start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" });
      expect(created.status).toBe(201);
      const sandbox = new SandboxGateway();
      const dispatcher = new Dispatcher(t.database, sandbox, t.clock, t.logger, {
        concurrency: 50, claimBatch: 100, leaseSeconds: 60, retryDelaySeconds: 300, tick: null,
      });
      let sentWhenTimerFired = -1;
      setTimeout(() => (sentWhenTimerFired = sandbox.total), 0);
      await dispatcher.drain();
      expect(sandbox.total).toBe(1000);
      expect(sentWhenTimerFired).toBeGreaterThanOrEqual(0);
      expect(sentWhenTimerFired).toBeLessThan(1000);
      await dispatcher.stop(1000);
      await t.close();
    });
  });
}
