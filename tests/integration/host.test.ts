/**
 * Routing reads the path only (issue 10, item 7): a `Host` of three characters or fewer (container
 * service names such as `app`, `api`, `web`) used to get 404 on every route, because Elysia looks
 * for the path's first slash from the 11th character of the URL on.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { serveApp } from "../../src/http/serve";
import { memoryLogger } from "../../src/ops/logger";
import { adminKey } from "../support/app";
import { type TestDatabase, freshDatabase } from "../support/db";
import { rawRequest } from "../support/raw-http";

setDefaultTimeout(60_000);

describe("routing by path only, whatever the Host", () => {
  let db: TestDatabase;
  let app: Awaited<ReturnType<typeof createApp>>;
  let server: ReturnType<typeof serveApp>;
  beforeAll(async () => {
    db = await freshDatabase("pglite");
    app = await createApp({
      config: { adminApiKey: adminKey },
      database: db.database,
      clock: new FixedClock("2026-12-01T00:00:00Z"),
      logger: memoryLogger(),
      signals: silentSignals,
    });
    server = serveApp(app, { port: 0, hostname: "127.0.0.1" });
  });
  afterAll(async () => {
    server.stop(true);
    await db.drop();
  });

  for (const host of ["app", "ab", "x", "api:3000", "[::1]", "localhost:3000"]) {
    test(`a real socket with Host: ${host} reaches /healthz and an authenticated route`, async () => {
      const health = await rawRequest(server.port!, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toEqual({ status: "ok" });
      const list = await rawRequest(
        server.port!,
        `GET /api/v1/clients?limit=1 HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${adminKey}\r\nConnection: close\r\n\r\n`,
      );
      expect(list.status).toBe(200);
      expect(JSON.parse(list.body)).toEqual({ items: [], next_cursor: null });
    });
  }

  test("a header block over 16 KiB gets Bun's own 431 (not a problem document: Bun answers before the app; see serve.ts)", async () => {
    const header = (n: number) => `GET /healthz HTTP/1.1\r\nHost: app\r\nX-Big: ${"a".repeat(n)}\r\nConnection: close\r\n\r\n`;
    expect((await rawRequest(server.port!, header(15_000))).status).toBe(200);
    const big = await rawRequest(server.port!, header(17_000));
    expect(big.status).toBe(431);
    expect(big.body).toBe("");
  });

  test("a streamed body (the CSV import) arrives whole through a short Host", async () => {
    const csv = "phone_number,tag\n79200000001,a\n79200000002,b\n";
    const reply = await rawRequest(
      server.port!,
      `POST /api/v1/clients/import HTTP/1.1\r\nHost: web\r\nAuthorization: Bearer ${adminKey}\r\nContent-Type: text/csv\r\n` +
        `Content-Length: ${csv.length}\r\nConnection: close\r\n\r\n${csv}`,
    );
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ rows: 2, created: 2, failed: 0 });
  });

  for (const [i, origin] of ["http://x", "http://app", "http://ab:1", "https://x", "http://localhost"].entries()) {
    test(`app.handle with ${origin}/… routes by the path, query and params included`, async () => {
      const health = await app.handle(new Request(`${origin}/healthz`));
      expect(health.status).toBe(200);
      const missing = await app.handle(new Request(`${origin}/api/v1/clients/7?x=1`, { headers: { authorization: `Bearer ${adminKey}` } }));
      expect(missing.status).toBe(404);
      expect((await missing.json()).detail).toBe("client 7 does not exist");
      const created = await app.handle(
        new Request(`${origin}/api/v1/clients`, {
          method: "POST",
          headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
          body: JSON.stringify({ phone_number: `7910000000${i}` }),
        }),
      );
      expect(created.status).toBe(201);
      expect(created.headers.get("location")).toMatch(/^\/api\/v1\/clients\/\d+$/);
    });
  }
});
