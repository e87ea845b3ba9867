/**
 * Issue 13, items 1, 2 and 5 in-process: the request log line and X-Request-Id on every response
 * (errors, 404s and the early 413 included), bounded route labels, /metrics and METRICS_TOKEN,
 * /readyz turning 503 once the process is stopping, and no secret in the whole log.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { Browser, type WebApp } from "../support/web";

setDefaultTimeout(60_000);

const adminKey = "observability-admin-key-0123456789";
const metricsToken = "metrics-token-abcdefghijklmnop";

for (const backend of backends()) {
  describe(`[${backend}] §10 request logs, request ids and /metrics`, () => {
    let db: TestDatabase;
    let app: Awaited<ReturnType<typeof createApp>>;
    const logger = memoryLogger("debug");
    let stopping = false;
    beforeAll(async () => {
      db = await freshDatabase(backend);
      app = await createApp({
        config: { adminApiKey: adminKey, metricsToken },
        database: db.database,
        clock: new FixedClock("2026-12-01T00:00:00Z"),
        logger,
        signals: silentSignals,
        stopping: () => stopping,
      });
    });
    afterAll(() => db.drop());

    const call = (method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) =>
      app.handle(new Request(`http://localhost${path}`, { method, headers: { authorization: `Bearer ${adminKey}`, ...init.headers }, body: init.body }));
    const requestLines = () => logger.lines.filter((l) => l.msg === "request");

    test("a sane X-Request-Id is echoed and logged with method, route template, status and duration", async () => {
      const r = await call("GET", "/api/v1/mailings/12345", { headers: { "x-request-id": "abc-123.X_y" } });
      expect(r.status).toBe(404);
      expect(r.headers.get("x-request-id")).toBe("abc-123.X_y");
      const line = requestLines().find((l) => l.request_id === "abc-123.X_y")!;
      expect(line).toMatchObject({ level: "info", method: "GET", route: "/api/v1/mailings/:id", status: 404 });
      expect(typeof line.duration_ms).toBe("number");
      expect(JSON.stringify(line)).not.toContain("12345");
    });

    test("an insane or missing X-Request-Id is replaced by a generated one, on every kind of response", async () => {
      const cases: [string, string, { headers?: Record<string, string>; body?: string }, number][] = [
        ["GET", "/api/v1/clients", { headers: { "x-request-id": "x".repeat(129) } }, 200],
        ["GET", "/nowhere/at/all", { headers: { "x-request-id": "has space" } }, 404],
        ["POST", "/api/v1/clients", { headers: { "content-type": "application/json" }, body: "{bad" }, 400],
        ["POST", "/api/v1/clients", { headers: { "content-type": "application/json" }, body: "{}" }, 422],
        ["GET", "/api/v1/clients", { headers: { authorization: "Bearer wrong" } }, 401],
        ["POST", "/api/v1/clients", { headers: { "content-type": "application/json", "content-length": String(2 * 1024 * 1024) }, body: "{}" }, 413],
      ];
      for (const [method, path, init, status] of cases) {
        const r = await call(method, path, init);
        expect(r.status, `${method} ${path}`).toBe(status);
        const id = r.headers.get("x-request-id");
        expect(id, `${method} ${path}`).toMatch(/^[0-9a-f-]{36}$/);
        expect(requestLines().find((l) => l.request_id === id), `${method} ${path}`).toMatchObject({ status });
      }
      // Unmatched paths share one label: never the raw path.
      expect(requestLines().find((l) => l.status === 404 && l.route === "unmatched")).toBeDefined();
      expect(JSON.stringify(logger.lines)).not.toContain("/nowhere/at/all");
    });

    test("/metrics needs the METRICS_TOKEN and shows every family, HTTP requests labelled by route template", async () => {
      expect((await call("GET", "/metrics")).status).toBe(401);
      expect((await call("GET", "/metrics", { headers: { authorization: "Bearer nope" } })).status).toBe(401);
      const r = await call("GET", "/metrics", { headers: { authorization: `Bearer ${metricsToken}` } });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toContain("text/plain");
      const text = await r.text();
      for (const name of [
        "notification_messages",
        "notification_due_backlog",
        "notification_oldest_due_age_seconds",
        "notification_send_duration_seconds",
        "notification_sends_total",
        "notification_gateway_errors_total",
        "notification_claim_batch_size",
        "http_request_duration_seconds",
        "process_resident_memory_bytes",
        "nodejs_eventloop_lag_p99_seconds",
      ]) {
        expect(text, name).toContain(`# TYPE ${name} `);
      }
      expect(text).toContain('notification_messages{status="sent"} 0');
      expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/api/v1/mailings/:id",status="404"} 1');
      expect(text).toContain('route="unmatched",status="404"');
      expect(text).not.toContain("/nowhere");
    });

    test("/readyz answers 503 as soon as the process is stopping", async () => {
      expect((await call("GET", "/readyz")).status).toBe(200);
      stopping = true;
      try {
        const r = await call("GET", "/readyz");
        expect(r.status).toBe(503);
        expect(await r.json()).toEqual({ status: "shutting down" });
      } finally {
        stopping = false;
      }
    });

    test("LOG_LEVEL: probes log at debug only; at warn no request line is written", async () => {
      await call("GET", "/healthz", { headers: { "x-request-id": "probe-1" } });
      expect(requestLines().find((l) => l.request_id === "probe-1")).toMatchObject({ level: "debug", route: "/healthz" });
      const quiet = memoryLogger("warn");
      const app2 = await createApp({ config: { adminApiKey: adminKey }, database: db.database, clock: new FixedClock("2026-12-01T00:00:00Z"), logger: quiet, signals: silentSignals });
      const r = await app2.handle(new Request("http://localhost/api/v1/clients", { headers: { authorization: `Bearer ${adminKey}` } }));
      expect(r.status).toBe(200);
      expect(quiet.lines).toEqual([]);
    });

    test("no admin key, API token or metrics token appears anywhere in the log", async () => {
      const created = await call("POST", "/api/v1/tokens", { headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "ci" }) });
      expect(created.status).toBe(201);
      const secret: string = ((await created.json()) as { token: string }).token;
      expect((await call("GET", "/api/v1/clients", { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
      expect((await call("GET", "/api/v1/clients", { headers: { authorization: `Bearer ${secret}x`, cookie: "session=cookie-secret-value" } })).status).toBe(401);
      const log = JSON.stringify(logger.lines);
      expect(requestLines().length).toBeGreaterThan(10);
      for (const value of [adminKey, secret, metricsToken, "cookie-secret-value", "Bearer"]) expect(log).not.toContain(value);
    });

    test("no password, session cookie or token in a query string appears in the log either", async () => {
      const web: WebApp = { database: db.database, clock: new FixedClock("2026-12-01T00:00:00Z"), handle: async (r) => app.handle(r), close: async () => {} };
      const password = "register-Pass-word-7391";
      const owner = new Browser(web);
      expect((await owner.register("owner@example.com", password)).status).toBe(303);
      const session = owner.cookies.get("nst_session")!;
      expect((await owner.get("/mailings")).status).toBe(200);
      const stranger = new Browser(web);
      expect((await stranger.post("/login", { email: "owner@example.com", password: "wrong-Pass-word-5820" })).status).toBeGreaterThanOrEqual(400);
      expect((await new Browser(web).post("/login", { email: "owner@example.com", password })).status).toBe(303);
      for (const path of ["/api/v1/clients?token=query-token-4417&api_key=query-key-9903", "/nowhere?token=query-token-4417", "/api/v1/clients/abc?password=query-pass-1180"]) {
        expect((await call("GET", path)).status).toBeLessThan(500);
      }
      expect((await call("PUT", "/healthz?token=query-token-4417")).status).toBe(405);
      const log = JSON.stringify(logger.lines);
      for (const value of [password, "wrong-Pass-word-5820", session, "query-token-4417", "query-key-9903", "query-pass-1180", "?token", "nst_session"]) {
        expect(log).not.toContain(value);
      }
    });
  });
}
