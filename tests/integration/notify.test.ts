import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { createApp } from "../../src/app";
import { systemClock } from "../../src/clock";
import { type Database, openPostgres } from "../../src/db/client";
import { Dispatcher } from "../../src/dispatch/dispatcher";
import { databaseSignals } from "../../src/dispatch/signals";
import { startFakeGateway } from "../../src/gateway/fake-server";
import { HttpGateway } from "../../src/gateway/http";
import { memoryLogger } from "../../src/ops/logger";
import { adminKey, auth } from "../support/app";
import { freshDatabase, type TestDatabase } from "../support/db";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

/**
 * §4 "across processes, with PostgreSQL LISTEN/NOTIFY": an API that runs no dispatcher, and a
 * dispatcher with no timer on another connection (as in another process). Only NOTIFY can wake it.
 */
if (process.env.DATABASE_URL) {
  describe("[postgres] §4 cross-process wake-up through LISTEN/NOTIFY", () => {
    let db: TestDatabase;
    let workerDb: Database;
    let dispatcher: Dispatcher;
    const gateway = startFakeGateway({ latencyMs: 200 });
    let app: Awaited<ReturnType<typeof createApp>>;
    const call = async (method: string, path: string, body?: unknown) => {
      const init: RequestInit = { method, headers: { ...auth, "content-type": "application/json" } };
      if (body !== undefined) init.body = JSON.stringify(body);
      const response = await app.handle(new Request(`http://localhost${path}`, init));
      return { status: response.status, body: await response.json().catch(() => null) };
    };

    beforeAll(async () => {
      db = await freshDatabase("postgres");
      const logger = memoryLogger();
      app = await createApp({
        config: { adminApiKey: adminKey },
        database: db.database,
        clock: systemClock,
        logger,
        signals: databaseSignals(db.database, logger, () => null), // this "process" has no dispatcher
      });
      workerDb = openPostgres(db.url!);
      dispatcher = new Dispatcher(workerDb, new HttpGateway({ baseUrl: gateway.url, token: "", timeoutMs: 5000 }), systemClock, memoryLogger(), {
        concurrency: 1,
        claimBatch: 10,
        leaseSeconds: 60,
        retryDelaySeconds: 300,
        tick: null, // no timer: only a notification can make it claim
      });
      await dispatcher.start();
      await dispatcher.idle();
    });
    afterAll(async () => {
      await dispatcher.stop(1000);
      await workerDb.close();
      await gateway.stop();
      await db.drop();
    });

    test("a due mailing created in one process is sent by a dispatcher in another at once", async () => {
      for (const phone of ["79100000001", "79100000002", "79100000003"]) {
        expect((await call("POST", "/api/v1/clients", { phone_number: phone })).status).toBe(201);
      }
      const now = new Date();
      const wall = (d: Date) => d.toISOString().slice(0, 19);
      const created = await call("POST", "/api/v1/mailings", {
        text: "now",
        start_time: wall(new Date(now.getTime() - 86_400_000)),
        end_time: wall(new Date(now.getTime() + 86_400_000)),
      });
      expect(created.status).toBe(201);
      const started = Date.now();
      while (gateway.received.size === 0 && Date.now() - started < 3000) await Bun.sleep(10);
      expect(gateway.received.size).toBe(1);

      // Cancelling it from the API process reaches the worker too: the sends still queued there
      // (one at a time, 200 ms each) are not made.
      expect((await call("POST", `/api/v1/mailings/${created.body.id}/cancel`)).status).toBe(200);
      await Bun.sleep(800);
      await dispatcher.idle();
      expect(gateway.received.size).toBeLessThanOrEqual(2);
      const rows = await db.database.rows<{ status: string; n: number }>(sql`
        select status, count(*)::int as n from messages group by 1 order by 1`);
      // The send in flight at the cancel is not written back as sent (SPEC §4): all three are cancelled.
      expect(rows).toEqual([{ status: "cancelled", n: 3 }]);
    });
  });
}
