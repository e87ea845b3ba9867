/** The address of the connection reaches the handlers behind serveApp: the audit log and the per-address sign-in limit use it. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { serveApp } from "../../src/http/serve";
import { memoryLogger } from "../../src/ops/logger";
import { freshDatabase, type TestDatabase } from "../support/db";

setDefaultTimeout(60_000);

describe("§9 the peer address behind serveApp", () => {
  let db: TestDatabase;
  let server: ReturnType<typeof serveApp>;
  let app: Awaited<ReturnType<typeof createApp>>;
  beforeAll(async () => {
    db = await freshDatabase("pglite");
    app = await createApp({ config: { adminApiKey: null }, database: db.database, clock: new FixedClock("2026-12-01T00:00:00Z"), logger: memoryLogger(), signals: silentSignals });
    server = serveApp(app, { port: 0, hostname: "127.0.0.1" });
  });
  afterAll(async () => {
    server.stop(true);
    await app.close();
    await db.drop();
  });

  test("a failed sign-in over a socket is recorded with the connection's address", async () => {
    const reply = await fetch(`http://127.0.0.1:${server.port}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": "203.0.113.9" },
      body: "email=nobody%40example.com&password=wrong-password",
    });
    expect(reply.status).toBe(401);
    const rows = await db.database.rows<{ ip: string | null }>(sql`select ip from audit_log where kind = 'signin.failed'`);
    expect(rows).toEqual([{ ip: "127.0.0.1" }]);
  });
});
