/**
 * Access matrix (issue 14 item 6): every route the app mounts × every identity, asserting the exact
 * status. The list of routes is read from the app itself (`app.routes`, Elysia's route table): a
 * route added without a line here fails the first test, and a line for a route that no longer
 * exists fails it too. Routes registered with and without a trailing slash (the compatibility
 * routes) share one line and both are sent.
 *
 * Identities: anonymous; operator and admin sessions; operator and admin API tokens; a revoked
 * token; a disabled user's session and token (the user disabled after signing in and making the
 * token, nothing else removed); an expired session; and a cross-site request (an admin session with
 * a foreign Origin). Sessions are made afresh for every request, so a line that signs out or signs
 * in cannot spoil the next one; routes that delete or change something get a fresh object each time.
 *
 * Run: `bun test tests/integration/access-matrix.test.ts` (PGlite), with DATABASE_URL for PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { createApp } from "../../src/app";
import { csrfTokenFor } from "../../src/auth/csrf";
import { SessionService } from "../../src/auth/sessions";
import { TokenService } from "../../src/auth/tokens";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { securityHeaderFaults } from "../support/security";
import { Browser, origin } from "../support/web";

setDefaultTimeout(300_000);

const identities = [
  "anonymous",
  "operatorSession",
  "adminSession",
  "operatorToken",
  "adminToken",
  "revokedToken",
  "disabledSession",
  "disabledToken",
  "expiredSession",
  "crossSite",
] as const;
type Identity = (typeof identities)[number];
type Expect = Record<Identity, number>;
type Body = Record<string, string> | ((n: number) => Record<string, string>);
/**
 * One line: the route as Elysia lists it (`METHOD /path/:param`), the path to send when it needs
 * values (`{client}`: a client that stays; `{freshClient}`, `{freshMailing}`, `{freshToken}`,
 * `{freshPhone}`: made anew for each request; `{victim}`: an operator the admin routes act on),
 * the body (JSON for the API, a form for the UI; the CSRF token is added), and the statuses.
 */
type Row = { route: string; path?: string; body?: Body; json?: unknown | ((n: number) => unknown); expect: Expect };

const all = (status: number): Expect => Object.fromEntries(identities.map((i) => [i, status])) as Expect;
/**
 * The JSON API: bearer tokens only. A session cookie (sent by a browser on its own, even from
 * another site) authenticates nothing there, and a disabled user's token is refused like a revoked one.
 */
const api = (ok: number, operator = ok): Expect => ({ ...all(401), operatorToken: operator, adminToken: ok });
/** A signed-in page (GET): callers without a live session are sent to /login. */
const page = (admin = 200, operator = admin): Expect => ({ ...all(303), operatorSession: operator, adminSession: admin, crossSite: admin });
/** A signed-in form (POST, PATCH, DELETE): as a page, but a foreign Origin is refused (CSRF) first. */
const form = (admin: number, operator = admin): Expect => ({ ...page(admin, operator), crossSite: 403 });
/** A public form (sign-in, registration, language): anyone may post it, but not from another site. */
const publicForm = (status: number, signedIn = status): Expect => ({ ...all(status), operatorSession: signedIn, adminSession: signedIn, crossSite: 403 });

const client = { phone_number: "79101234567" };
const matrix: Row[] = [
  // Operations, the OpenAPI document and static files: the same for everyone.
  { route: "GET /healthz", expect: all(200) },
  { route: "GET /readyz", expect: all(200) },
  // METRICS_TOKEN is set: no session or API token opens the metrics, only that token.
  { route: "GET /metrics", expect: all(401) },
  { route: "GET /docs", expect: all(200) },
  { route: "GET /docs/json", expect: all(200) },
  { route: "GET /docs/assets/:name", path: "/docs/assets/swagger-ui.css", expect: all(200) },
  { route: "GET /static/*", path: "/static/app.css", expect: all(200) },

  // API v1: clients.
  { route: "GET /api/v1/clients", expect: api(200) },
  { route: "POST /api/v1/clients", json: (n: number) => ({ phone_number: `7911${String(n).padStart(7, "0")}` }), expect: api(201) },
  { route: "GET /api/v1/clients/:id", path: "/api/v1/clients/{client}", expect: api(200) },
  { route: "PATCH /api/v1/clients/:id", path: "/api/v1/clients/{client}", json: { tag: "vip" }, expect: api(200) },
  { route: "DELETE /api/v1/clients/:id", path: "/api/v1/clients/{freshClient}", expect: api(204) },
  { route: "GET /api/v1/clients/export", expect: api(200) },
  { route: "POST /api/v1/clients/import", expect: api(422) },
  // Mailings.
  { route: "GET /api/v1/mailings", expect: api(200) },
  { route: "POST /api/v1/mailings", json: { text: "" }, expect: api(422) },
  { route: "GET /api/v1/mailings/:id", path: "/api/v1/mailings/{mailing}", expect: api(200) },
  { route: "PATCH /api/v1/mailings/:id", path: "/api/v1/mailings/{mailing}", json: { text: "hello" }, expect: api(200) },
  { route: "DELETE /api/v1/mailings/:id", path: "/api/v1/mailings/{freshMailing}", expect: api(204) },
  { route: "POST /api/v1/mailings/:id/pause", path: "/api/v1/mailings/{freshMailing}/pause", expect: api(200) },
  { route: "POST /api/v1/mailings/:id/resume", path: "/api/v1/mailings/{freshMailing}/resume", expect: api(200) },
  { route: "POST /api/v1/mailings/:id/cancel", path: "/api/v1/mailings/{freshMailing}/cancel", expect: api(200) },
  { route: "GET /api/v1/mailings/:id/messages", path: "/api/v1/mailings/{mailing}/messages", expect: api(200) },
  { route: "GET /api/v1/mailings/:id/messages/export", path: "/api/v1/mailings/{mailing}/messages/export", expect: api(200) },
  // Statistics.
  { route: "GET /api/v1/stats", expect: api(200) },
  { route: "GET /api/v1/stats/:id", path: "/api/v1/stats/{mailing}", expect: api(200) },
  // Tokens: everyone manages their own; the audit log is for admins.
  { route: "GET /api/v1/tokens", expect: api(200) },
  { route: "POST /api/v1/tokens", json: { name: "matrix" }, expect: api(201) },
  { route: "DELETE /api/v1/tokens/:id", path: "/api/v1/tokens/{freshToken}", expect: api(204) },
  { route: "GET /api/v1/audit", expect: api(200, 403) },
  // Blocklist.
  { route: "GET /api/v1/blocklist", expect: api(200) },
  { route: "POST /api/v1/blocklist", json: { phone_number: "" }, expect: api(422) },
  { route: "GET /api/v1/blocklist/export", expect: api(200) },
  { route: "POST /api/v1/blocklist/import", expect: api(422) },
  { route: "DELETE /api/v1/blocklist/:phone", path: "/api/v1/blocklist/{freshPhone}", expect: api(204) },

  // The original service's routes, kept for existing callers: bearer tokens as the API.
  { route: "POST /clients/create", json: { phone_number: "" }, expect: api(422) },
  { route: "PATCH /clients/update/:id", path: "/clients/update/{client}", json: { tag: "compat" }, expect: api(200) },
  { route: "DELETE /clients/delete/:id", path: "/clients/delete/{freshClient}", expect: api(204) },
  { route: "POST /mailing/create", json: { text: "" }, expect: api(422) },
  { route: "PATCH /mailing/update/:id", path: "/mailing/update/{mailing}", json: { text: "compat" }, expect: api(200) },
  { route: "DELETE /mailing/delete/:id", path: "/mailing/delete/{freshMailing}", expect: api(204) },
  { route: "GET /stats", expect: api(200) },
  { route: "GET /stats/:id", path: "/stats/{mailing}", expect: api(200) },

  // Delivery receipts: each carries its own proof, whoever sends it; identities change nothing.
  { route: "POST /webhooks/twilio", body: { MessageSid: "SM1", MessageStatus: "delivered" }, expect: all(403) },
  { route: "POST /webhooks/smsru/:token", path: "/webhooks/smsru/hook-secret-matrix", body: { "data[0]": "sms_status\n1\n103" }, expect: all(200) },
  { route: "POST /webhooks/smsc/:token", path: "/webhooks/smsc/wrong-secret", body: { id: "1", status: "1" }, expect: all(404) },

  // Signing in, registering, the language.
  { route: "GET /login", expect: { ...all(200), operatorSession: 303, adminSession: 303, crossSite: 303 } },
  { route: "POST /login", body: (n) => ({ email: `nobody-${n}@example.com`, password: "wrong password" }), expect: publicForm(401) },
  { route: "GET /register", expect: all(200) },
  { route: "POST /register", body: { email: "not an e-mail", password: "x" }, expect: publicForm(422) },
  { route: "POST /logout", expect: publicForm(303) },
  { route: "POST /lang", body: { lang: "en", back: "/clients" }, expect: publicForm(303) },
  // Single sign-on (GitHub configured): anyone may start it; the callback without its state cookie is refused.
  { route: "GET /auth/:provider", path: "/auth/github", expect: all(303) },
  { route: "GET /auth/:provider/callback", path: "/auth/github/callback?code=x&state=y", expect: all(400) },

  // The UI: pages and forms.
  { route: "GET /", expect: page() },
  { route: "GET /clients", expect: page() },
  { route: "POST /clients", body: { phone_number: "" }, expect: form(422) },
  { route: "GET /clients/export", expect: page() },
  { route: "GET /clients/:id/edit", path: "/clients/{client}/edit", expect: page() },
  { route: "GET /clients/:id/row", path: "/clients/{client}/row", expect: page() },
  { route: "DELETE /clients/:id", path: "/clients/{freshClient}", expect: form(200) },
  { route: "POST /web/clients/import", expect: form(422) },
  { route: "GET /web/clients/import/:id", path: "/web/clients/import/nope", expect: page(404) },
  { route: "POST /web/clients/import/:id/start", path: "/web/clients/import/nope/start", expect: form(404) },
  { route: "POST /web/clients/import/:id/discard", path: "/web/clients/import/nope/discard", expect: form(200) },
  { route: "GET /mailings", expect: page() },
  { route: "GET /mailings/preview", path: "/mailings/preview?start_time=2026-12-02T09:00&end_time=2026-12-02T18:00", expect: page() },
  { route: "POST /mailings", body: { text: "" }, expect: form(422) },
  { route: "GET /mailings/:id", path: "/mailings/{mailing}", expect: page() },
  { route: "PATCH /mailings/:id", path: "/mailings/{mailing}", body: { text: "" }, expect: form(422) },
  { route: "POST /mailings/:id/edit", path: "/mailings/{mailing}/edit", body: { text: "" }, expect: form(422) },
  { route: "GET /mailings/:id/export", path: "/mailings/{mailing}/export", expect: page() },
  { route: "POST /mailings/:id/pause", path: "/mailings/{freshMailing}/pause", expect: form(303) },
  { route: "POST /mailings/:id/resume", path: "/mailings/{freshMailing}/resume", expect: form(303) },
  { route: "POST /mailings/:id/cancel", path: "/mailings/{freshMailing}/cancel", expect: form(303) },
  { route: "POST /mailings/:id/delete", path: "/mailings/{freshMailing}/delete", expect: form(303) },
  { route: "POST /mailings/test-send", body: { test_phone: "79101234567", text: "hi" }, expect: form(503) },
  { route: "GET /tokens", expect: page() },
  { route: "POST /tokens", body: { name: "" }, expect: form(422) },
  { route: "POST /tokens/:id/revoke", path: "/tokens/{freshToken}/revoke", expect: form(200) },
  { route: "GET /blocklist", expect: page() },
  { route: "POST /blocklist", body: { phone: "" }, expect: form(422) },
  { route: "POST /blocklist/:phone/unblock", path: "/blocklist/{freshPhone}/unblock", expect: form(200) },
  // Without the sandbox provider the page says there is no outbox.
  { route: "GET /outbox", expect: page() },

  // The admin area: admins only.
  { route: "GET /admin", expect: page(200, 403) },
  { route: "POST /admin/users/:id/role", path: "/admin/users/{victim}/role", body: { role: "operator" }, expect: form(200, 403) },
  { route: "POST /admin/users/:id/disable", path: "/admin/users/{victim}/disable", expect: form(200, 403) },
  { route: "POST /admin/users/:id/enable", path: "/admin/users/{victim}/enable", expect: form(200, 403) },
  { route: "GET /admin/tokens", expect: page(200, 403) },
  { route: "POST /admin/tokens/:id/revoke", path: "/admin/tokens/{freshToken}/revoke", expect: form(200, 403) },
  { route: "GET /admin/audit", expect: page(200, 403) },
];

/** `GET /api/v1/clients/` and `GET /clients/create/` are the same line as without the slash. */
const key = (method: string, path: string) => `${method} ${path.length > 1 ? path.replace(/\/$/, "") : path}`;

for (const backend of backends()) {
  describe(`[${backend}] access matrix`, () => {
    let t: TestDatabase;
    let app: Awaited<ReturnType<typeof createApp>>;
    const clock = new FixedClock("2026-12-01T10:00:00Z");
    const send = (request: Request) => app.handle(request);
    const users = {} as Record<"admin" | "operator" | "disabled" | "expired" | "victim", number>;
    const bearer = {} as Record<"operator" | "admin" | "revoked" | "disabled", string>;
    let sessions: SessionService;
    let tokens: TokenService;
    let clientId = "0";
    let mailingId = "0";
    let counter = 0;

    const apiCall = async (method: string, path: string, body?: unknown) => {
      const r = await send(new Request(`${origin}${path}`, { method, headers: { authorization: `Bearer ${bearer.admin}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) }));
      if (r.status >= 300) throw new Error(`setup ${method} ${path}: ${r.status} ${await r.text()}`);
      return r.status === 204 ? null : ((await r.json()) as Record<string, unknown>);
    };
    const newMailing = async () => String((await apiCall("POST", "/api/v1/mailings", { text: "hi", start_time: "2026-12-02T09:00:00", end_time: "2026-12-02T18:00:00" }))!.id);

    /** The headers of one identity, with a session made for this request. */
    const identity = async (who: Identity): Promise<{ headers: Record<string, string>; csrf: string }> => {
      const session = async (userId: number) => {
        const s = await sessions.create(userId);
        return { headers: { cookie: `nst_session=${s.token}`, origin }, csrf: await csrfTokenFor(s.token) };
      };
      const token = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` }, csrf: "" });
      switch (who) {
        case "anonymous":
          return { headers: {}, csrf: "" };
        case "operatorSession":
          return session(users.operator);
        case "adminSession":
          return session(users.admin);
        case "operatorToken":
          return token(bearer.operator);
        case "adminToken":
          return token(bearer.admin);
        case "revokedToken":
          return token(bearer.revoked);
        case "disabledSession":
          return session(users.disabled);
        case "disabledToken":
          return token(bearer.disabled);
        case "expiredSession": {
          const s = await session(users.expired);
          await t.database.rows(sql`update sessions set expires_at = ${new Date(clock.now().getTime() - 60_000).toISOString()}::timestamptz where user_id = ${users.expired}`);
          return s;
        }
        case "crossSite": {
          const s = await session(users.admin);
          return { ...s, headers: { ...s.headers, origin: "https://evil.example" } };
        }
      }
    };

    /** The path with its placeholders filled, fresh objects made for this request. */
    const fill = async (path: string) => {
      let out = path.replace("{client}", clientId).replace("{mailing}", mailingId).replace("{victim}", String(users.victim));
      if (out.includes("{freshClient}")) out = out.replace("{freshClient}", String((await apiCall("POST", "/api/v1/clients", { phone_number: `7910${String(5_000_000 + ++counter).padStart(7, "0")}` }))!.id));
      if (out.includes("{freshMailing}")) out = out.replace("{freshMailing}", await newMailing());
      if (out.includes("{freshToken}")) {
        const operatorActor = { kind: "session" as const, role: "operator" as const, userId: users.operator, tokenId: null };
        out = out.replace("{freshToken}", String((await tokens.create(operatorActor, `fresh-${++counter}`, clock.now())).id));
      }
      if (out.includes("{freshPhone}")) {
        const phone = `7920${String(1_000_000 + ++counter).padStart(7, "0")}`;
        await apiCall("POST", "/api/v1/blocklist", { phone_number: phone });
        out = out.replace("{freshPhone}", phone);
      }
      return out;
    };

    beforeAll(async () => {
      t = await freshDatabase(backend);
      app = await createApp({
        config: {
          adminApiKey: null,
          metricsToken: "metrics-secret-matrix",
          webhookToken: "hook-secret-matrix",
          provider: { name: "twilio", accountSid: "AC0", authToken: "twilio-secret", from: "+15550000000" } as never,
          oauth: { github: { clientId: "gh-id", clientSecret: "gh-secret" }, google: null, oidc: null },
        },
        database: t.database,
        clock,
        logger: memoryLogger(),
        signals: silentSignals,
      });
      sessions = new SessionService(t.database, clock);
      tokens = new TokenService(t.database, clock, memoryLogger());
      const webApp = { database: t.database, clock, handle: send, close: async () => {} };
      for (const name of ["admin", "operator", "disabled", "expired", "victim"] as const) {
        // The first account is the admin.
        expect((await new Browser(webApp).register(`${name}@example.com`)).status).toBe(303);
        users[name] = Number((await t.database.rows<{ id: number }>(sql`select id from users where email = ${`${name}@example.com`}`))[0]!.id);
      }
      const actor = (userId: number, role: "admin" | "operator") => ({ kind: "session" as const, role, userId, tokenId: null });
      bearer.operator = (await tokens.create(actor(users.operator, "operator"), "op", clock.now())).token;
      bearer.admin = (await tokens.create(actor(users.admin, "admin"), "adm", clock.now())).token;
      const revoked = await tokens.create(actor(users.operator, "operator"), "gone", clock.now());
      await tokens.revoke(actor(users.operator, "operator"), revoked.id, clock.now());
      bearer.revoked = revoked.token;
      bearer.disabled = (await tokens.create(actor(users.disabled, "operator"), "dis", clock.now())).token;
      // Disabled after it signed in and made its token: both stay in the database and must stop working.
      await t.database.rows(sql`update users set disabled = true where id = ${users.disabled}`);
      clientId = String((await apiCall("POST", "/api/v1/clients", client))!.id);
      mailingId = await newMailing();
    });
    afterAll(async () => {
      await app?.close();
      await t?.drop();
    });

    test("every route the app mounts has a line, and every line is a mounted route", () => {
      const mounted = new Set(app.routes.map((r) => key(r.method, r.path)));
      const lines = new Set(matrix.map((row) => key(...(row.route.split(" ") as [string, string]))));
      expect(matrix.length).toBe(lines.size); // no route twice
      expect([...mounted].filter((r) => !lines.has(r)).sort()).toEqual([]);
      expect([...lines].filter((r) => !mounted.has(r)).sort()).toEqual([]);
    });

    test("every route × every identity answers the expected status, with the security headers", async () => {
      const mismatches: string[] = [];
      const headerFaults: string[] = [];
      const slashed = new Set(app.routes.filter((r) => r.path.length > 1 && r.path.endsWith("/")).map((r) => key(r.method, r.path)));
      const unslashed = new Set(app.routes.filter((r) => !(r.path.length > 1 && r.path.endsWith("/"))).map((r) => key(r.method, r.path)));
      for (const row of matrix) {
        const [method, template] = row.route.split(" ") as [string, string];
        // Both spellings when both are mounted (the compatibility routes).
        const spellings = slashed.has(key(method, template)) && unslashed.has(key(method, template)) ? ["", "/"] : [""];
        for (const slash of spellings) {
          for (const who of identities) {
            const { headers, csrf } = await identity(who);
            let body: string | undefined;
            if (row.json !== undefined) {
              headers["content-type"] = "application/json";
              body = JSON.stringify(typeof row.json === "function" ? row.json(++counter) : row.json);
            } else if (row.body !== undefined) {
              const fields = typeof row.body === "function" ? row.body(++counter) : row.body;
              headers["content-type"] = "application/x-www-form-urlencoded";
              body = new URLSearchParams(csrf ? { ...fields, _csrf: csrf } : fields).toString();
            } else if (method !== "GET" && csrf) {
              // No body: the CSRF token goes in the header htmx sends.
              headers["x-csrf-token"] = csrf;
            }
            const filled = await fill(row.path ?? template);
            const [p, q] = filled.split("?");
            const path = `${p}${slash}${q ? `?${q}` : ""}`;
            const r = await send(new Request(`${origin}${path}`, { method, headers, body, redirect: "manual" }));
            await r.arrayBuffer();
            if (r.status !== row.expect[who]) mismatches.push(`${method} ${path} as ${who}: ${r.status}, expected ${row.expect[who]}`);
            // Every answer: the security headers, and no-store unless it is a public file.
            headerFaults.push(...securityHeaderFaults(`${method} ${path} as ${who}`, r.headers));
            const publicFile = r.status === 200 && /^\/(static|docs\/assets)\//.test(path);
            if (!publicFile && r.headers.get("cache-control") !== "no-store") headerFaults.push(`${method} ${path} as ${who}: Cache-Control ${r.headers.get("cache-control")}`);
          }
        }
      }
      expect(mismatches).toEqual([]);
      expect(headerFaults).toEqual([]);
    });
  });
}
