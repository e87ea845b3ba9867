/**
 * Issue 14 item 6, beyond the access matrix (access-matrix.test.ts): security headers on every kind
 * of answer, Cache-Control: no-store where secrets or private data leave, session fixation, cookie
 * flags, SQL-injection strings in every filter and search parameter, and a sweep of the process log
 * for every secret a run handled (passwords, session cookies, API tokens, OAuth codes, states and
 * access tokens, webhook secrets).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { twilioSignature } from "../../src/webhooks/receipts";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { type FakeProvider, startFakeProvider } from "../support/fake-oauth";
import { securityHeaderFaults } from "../support/security";
import { Browser, origin, type WebApp } from "../support/web";

setDefaultTimeout(180_000);

const twilioAuthToken = "twilio-auth-secret-5512";
const webhookToken = "webhook-path-secret-7781";
const metricsToken = "metrics-secret-3390";

for (const backend of backends()) {
  describe(`[${backend}] security`, () => {
    let t: TestDatabase;
    let fake: FakeProvider;
    const logger = memoryLogger();
    let app: Awaited<ReturnType<typeof createApp>>;
    let web: WebApp;
    const clock = new FixedClock("2026-12-01T10:00:00Z");
    const password = "Sweep-pass-word-4471";
    let admin: Browser;
    let adminToken: string;
    const call = (method: string, path: string, init: RequestInit = {}) => app.handle(new Request(`${origin}${path}`, { method, redirect: "manual", ...init }));

    beforeAll(async () => {
      t = await freshDatabase(backend);
      fake = await startFakeProvider({ "gh-client": "gh-secret-oauth-9921" });
      app = await createApp({
        config: {
          adminApiKey: null,
          metricsToken,
          webhookToken,
          provider: { name: "twilio", accountSid: `AC${"0".repeat(32)}`, authToken: twilioAuthToken, from: "+15550000000" },
          oauth: { github: { clientId: "gh-client", clientSecret: "gh-secret-oauth-9921" }, google: null, oidc: null },
          adminEmails: ["boss@example.com"],
        },
        oauthEndpoints: { github: fake.githubEndpoints(), timeoutMs: 2_000 },
        database: t.database,
        clock,
        logger,
        signals: silentSignals,
      });
      web = { database: t.database, clock, handle: (r) => app.handle(r), close: async () => {} };
      admin = new Browser(web);
      expect((await admin.register("admin@example.com", password)).status).toBe(303);
      const created = await admin.post("/tokens", { name: "sweep", _csrf: await admin.csrf() });
      expect(created.status).toBe(200);
      adminToken = /\bnst_[A-Za-z0-9_-]+/.exec(created.text)?.[0] ?? "";
      expect(adminToken).not.toBe("");
    });
    afterAll(async () => {
      fake?.stop();
      await app?.close();
      await t?.drop();
    });

    test("every kind of answer carries CSP with frame-ancestors, nosniff and Referrer-Policy", async () => {
      const bearer = { authorization: `Bearer ${adminToken}` };
      const json = { ...bearer, "content-type": "application/json" };
      const answers: [string, Response][] = [
        ["404 unknown path", await call("GET", "/no/such/page")],
        ["405", await call("PUT", "/api/v1/clients", { headers: bearer })],
        ["401 problem", await call("GET", "/api/v1/clients")],
        ["400 bad JSON", await call("POST", "/api/v1/clients", { headers: json, body: "{" })],
        ["413 too large", await call("POST", "/api/v1/clients", { headers: { ...json, "content-length": String(50 * 1024 * 1024) }, body: "{}" })],
        ["422 problem", await call("POST", "/api/v1/clients", { headers: json, body: "{}" })],
        ["201 API answer", await call("POST", "/api/v1/clients", { headers: { ...json, "idempotency-key": "k-1" }, body: JSON.stringify({ phone_number: "79101230001" }) })],
        ["Idempotency-Key replay", await call("POST", "/api/v1/clients", { headers: { ...json, "idempotency-key": "k-1" }, body: JSON.stringify({ phone_number: "79101230001" }) })],
        ["blocked", await call("POST", "/api/v1/blocklist", { headers: json, body: JSON.stringify({ phone_number: "79101230009" }) })],
        ["204", await call("DELETE", "/api/v1/blocklist/79101230009", { headers: bearer })],
        ["static file", await call("GET", "/static/app.css")],
        ["packaged static file", await call("GET", "/static/htmx.min.js")],
        ["static 404", await call("GET", "/static/nothing.js")],
        ["OpenAPI asset", await call("GET", "/docs/assets/swagger-ui.css")],
        ["OpenAPI page", await call("GET", "/docs")],
        ["OpenAPI JSON", await call("GET", "/docs/json")],
        ["health", await call("GET", "/healthz")],
        ["readiness", await call("GET", "/readyz")],
        ["metrics 401", await call("GET", "/metrics")],
        ["metrics", await call("GET", "/metrics", { headers: { authorization: `Bearer ${metricsToken}` } })],
        ["UI redirect to /login", await call("GET", "/clients")],
        ["UI 404 page", await call("GET", "/mailings/999999", { headers: { cookie: admin.cookieHeader() } })],
        ["UI page", await call("GET", "/clients", { headers: { cookie: admin.cookieHeader() } })],
        ["CSV export", await call("GET", "/api/v1/clients/export", { headers: bearer })],
        ["webhook 403", await call("POST", "/webhooks/twilio", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "MessageSid=SM1" })],
        ["webhook 404", await call("POST", "/webhooks/smsc/wrong", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "id=1" })],
        ["OAuth start", await call("GET", "/auth/github")],
        ["OAuth refusal", await call("GET", "/auth/github/callback?code=x&state=y")],
      ];
      const faults = answers.flatMap(([label, r]) => securityHeaderFaults(`${label} (${r.status})`, r.headers));
      expect(faults).toEqual([]);
      // The statuses are the ones named, so the list above really covers those kinds of answer.
      expect(answers.map(([label, r]) => `${label}: ${r.status}`)).toEqual([
        "404 unknown path: 404", "405: 405", "401 problem: 401", "400 bad JSON: 400", "413 too large: 413", "422 problem: 422",
        "201 API answer: 201", "Idempotency-Key replay: 201", "blocked: 201", "204: 204", "static file: 200", "packaged static file: 200", "static 404: 404",
        "OpenAPI asset: 200", "OpenAPI page: 200", "OpenAPI JSON: 200", "health: 200", "readiness: 200", "metrics 401: 401", "metrics: 200",
        "UI redirect to /login: 303", "UI 404 page: 404", "UI page: 200", "CSV export: 200", "webhook 403: 403", "webhook 404: 404",
        "OAuth start: 303", "OAuth refusal: 400",
      ]);
      // The OpenAPI page's one inline script is allowed by its hash, not by 'unsafe-inline'.
      const docs = answers.find(([label]) => label === "OpenAPI page")![1];
      expect(docs.headers.get("content-security-policy")).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    });

    test("Cache-Control: no-store on token creation and on every private answer; public files stay cacheable", async () => {
      const bearer = { authorization: `Bearer ${adminToken}` };
      const noStore = [
        await call("POST", "/api/v1/tokens", { headers: { ...bearer, "content-type": "application/json" }, body: JSON.stringify({ name: "cache" }) }),
        await call("POST", "/tokens", { headers: { cookie: admin.cookieHeader(), origin, "content-type": "application/x-www-form-urlencoded" }, body: `name=ui&_csrf=${await admin.csrf()}` }),
        await call("GET", "/api/v1/tokens", { headers: bearer }),
        await call("GET", "/api/v1/clients", { headers: bearer }),
        await call("GET", "/api/v1/audit", { headers: bearer }),
        await call("GET", "/api/v1/clients/export", { headers: bearer }),
        await call("GET", "/api/v1/blocklist/export", { headers: bearer }),
        await call("GET", "/admin/audit", { headers: { cookie: admin.cookieHeader() } }),
        await call("GET", "/metrics", { headers: { authorization: `Bearer ${metricsToken}` } }),
        await call("GET", "/api/v1/nothing", { headers: bearer }),
        await call("GET", "/auth/github"),
      ];
      expect(noStore.map((r) => `${r.status} ${r.headers.get("cache-control")}`)).toEqual([
        "201 no-store", "200 no-store", "200 no-store", "200 no-store", "200 no-store", "200 no-store", "200 no-store", "200 no-store", "200 no-store", "404 no-store", "303 no-store",
      ]);
      for (const path of ["/static/app.css", "/static/htmx.min.js", "/docs/assets/swagger-ui-bundle.js"]) {
        expect((await call("GET", path)).headers.get("cache-control")).toMatch(/^public, max-age=\d+$/);
      }
    });

    test("a static name that is a property of every object (toString, constructor, __proto__) is a 404, not a 500", async () => {
      // The fuzzer found GET /static/toString → 500: the packaged files' lookup read Object.prototype.
      const statuses: string[] = [];
      for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"]) statuses.push(`${name}: ${(await call("GET", `/static/${name}`)).status}`);
      expect(statuses).toEqual(["toString: 404", "constructor: 404", "__proto__: 404", "hasOwnProperty: 404", "valueOf: 404"]);
    });

    test("session fixation: a session id planted before signing in is not the one after, and never works", async () => {
      const planted = "s_planted-by-an-attacker-0000000000000000";
      for (const how of ["login", "register", "oauth"] as const) {
        const b = new Browser(web);
        b.cookies.set("nst_session", planted);
        if (how === "login") expect((await b.post("/login", { email: "admin@example.com", password })).status).toBe(303);
        if (how === "register") expect((await b.register("fixation@example.com")).status).toBe(303);
        if (how === "oauth") {
          fake.user = { sub: "boss-1", email: "boss@example.com", email_verified: true, github_id: 77 };
          const start = await b.get("/auth/github");
          const back = new URL((await fetch(start.headers.get("location")!, { redirect: "manual" })).headers.get("location")!);
          expect((await b.get(back.pathname + back.search)).status).toBe(303);
        }
        const after = b.cookies.get("nst_session")!;
        expect(after).toMatch(/^s_/);
        expect(after).not.toBe(planted);
        expect((await b.get("/")).status).toBe(200);
        const attacker = new Browser(web);
        attacker.cookies.set("nst_session", planted);
        expect((await attacker.get("/")).status).toBe(303);
      }
    });

    test("cookie flags: every cookie is SameSite=Lax and Path=/, the session and OAuth ones HttpOnly; all Secure behind an https PUBLIC_URL", async () => {
      const https = await createApp({
        config: { adminApiKey: null, publicUrl: "https://notify.example", oauth: { github: { clientId: "gh-client", clientSecret: "gh-secret-oauth-9921" }, google: null, oidc: null } },
        oauthEndpoints: { github: fake.githubEndpoints(), timeoutMs: 2_000 },
        database: t.database,
        clock,
        logger: memoryLogger(),
        signals: silentSignals,
      });
      try {
        for (const [name, handle, secure] of [["http", app.handle, false], ["https PUBLIC_URL", https.handle, true]] as const) {
          const b = new Browser({ ...web, handle: (r) => handle(r) });
          const cookies: string[] = [];
          const keep = (r: { headers: Headers }) => cookies.push(...r.headers.getSetCookie());
          keep(await b.post("/login", { email: "admin@example.com", password }));
          keep(await b.post("/lang", { lang: "en", back: "/", _csrf: await b.csrf() }));
          keep(await b.get("/auth/github"));
          keep(await b.post("/logout", { _csrf: await b.csrf() }));
          const names = cookies.map((c) => c.split("=")[0]);
          expect(names.sort()).toEqual(["nst_lang", "nst_oauth", "nst_session", "nst_session"].sort());
          for (const c of cookies) {
            const label = `${name}: ${c.split(";")[0]!.split("=")[0]}`;
            expect(`${label} ${/; SameSite=Lax/.test(c)} ${/; Path=\//.test(c)}`).toBe(`${label} true true`);
            expect(`${label} secure ${/; Secure/.test(c)}`).toBe(`${label} secure ${secure}`);
            if (!c.startsWith("nst_lang=")) expect(`${label} ${/; HttpOnly/.test(c)}`).toBe(`${label} true`);
          }
        }
      } finally {
        await https.close();
      }
    });

    test("SQL-injection strings in every filter and search parameter: no 5xx, nothing changed, nothing matched", async () => {
      const strings = ["' OR '1'='1", "'; DROP TABLE clients; --", "1; DELETE FROM users", "\" OR \"\"=\"", "%' --", "1) OR (1=1", "' UNION SELECT id, email FROM users --", "\\", "%_%"];
      const bearer = { authorization: `Bearer ${adminToken}` };
      // The API's query parameters, read from its own OpenAPI document: a new filter is swept too.
      const spec = (await (await call("GET", "/docs/json")).json()) as { paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>> };
      const targets: { path: string; params: string[]; headers: Record<string, string> }[] = [];
      for (const [path, operations] of Object.entries(spec.paths)) {
        const get = operations.get;
        const params = (get?.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
        if (get && params.length > 0) targets.push({ path: path.replace(/\{[^}]+\}/g, "1").replace(/(.)\/$/, "$1"), params, headers: bearer });
      }
      expect(targets.map((x) => x.path)).toContain("/api/v1/clients");
      // The UI's filters and searches (every ctx.query read in src/web/routes).
      const session = { cookie: admin.cookieHeader() };
      targets.push(
        { path: "/clients", params: ["q", "tag", "code", "cursor"], headers: session },
        { path: "/mailings", params: ["status", "cursor"], headers: session },
        { path: "/mailings/1", params: ["status", "cursor"], headers: session },
        { path: "/mailings/1/export", params: ["status"], headers: session },
        { path: "/admin/audit", params: ["user", "kind", "cursor"], headers: session },
        { path: "/admin/tokens", params: ["cursor"], headers: session },
      );
      const mailing = await call("POST", "/api/v1/mailings", { headers: { ...bearer, "content-type": "application/json" }, body: JSON.stringify({ text: "hi", start_time: "2026-12-02T09:00:00", end_time: "2026-12-02T18:00:00" }) });
      expect(mailing.status).toBe(201);
      const fingerprint = async () =>
        JSON.stringify(await t.database.rows(sql`select (select count(*)::int from clients) as c, (select count(*)::int from users) as u, (select count(*)::int from mailings) as m, (select count(*)::int from api_tokens) as t, (select coalesce(string_agg(phone_number, ',' order by id), '') from clients) as p`));
      const before = await fingerprint();
      const faults: string[] = [];
      let sent = 0;
      for (const target of targets) {
        for (const param of target.params) {
          for (const s of strings) {
            const r = await call("GET", `${target.path}?${new URLSearchParams({ [param]: s })}`, { headers: target.headers });
            const text = await r.text();
            sent++;
            if (r.status >= 500) faults.push(`${target.path}?${param}=${s}: ${r.status}`);
            // An injection that worked would list every client. No tag is one of these strings; `q`
            // searches the digits of phone numbers, so it finds what its digits alone find.
            if (r.status === 200 && target.path === "/api/v1/clients" && param === "tag" && JSON.parse(text).items.length > 0) faults.push(`tag=${s} matched clients`);
            if (r.status === 200 && target.path === "/api/v1/clients" && param === "q") {
              const digitsOnly = await call("GET", `/api/v1/clients?q=${s.replace(/\D/g, "")}`, { headers: target.headers });
              if (JSON.parse(text).items.length !== ((await digitsOnly.json()) as { items: unknown[] }).items.length) faults.push(`q=${s} matched more than its digits`);
            }
          }
        }
      }
      expect(faults).toEqual([]);
      expect(sent).toBeGreaterThan(150);
      expect(await fingerprint()).toBe(before);
    });

    test("no answer after the one that made it shows a token's secret, and no page shows a password", async () => {
      const made = await call("POST", "/api/v1/tokens", { headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ name: "shown-once" }) });
      const secret = ((await made.json()) as { token: string }).token;
      const failed = await new Browser(web).post("/login", { email: "admin@example.com", password: "Typo-pass-word-9912" });
      expect(failed.status).toBe(401);
      expect(failed.text).not.toContain("Typo-pass-word-9912");
      const bearer = { authorization: `Bearer ${adminToken}` };
      const session = { cookie: admin.cookieHeader() };
      const faults: string[] = [];
      for (const [path, headers] of [["/api/v1/tokens", bearer], ["/api/v1/audit", bearer], ["/tokens", session], ["/admin/tokens", session], ["/admin/audit", session], ["/admin", session]] as const) {
        const text = await (await call("GET", path, { headers })).text();
        for (const value of [secret, adminToken, password, "Typo-pass-word-9912", admin.cookies.get("nst_session")!]) if (text.includes(value)) faults.push(`${path} shows ${value.slice(0, 6)}…`);
        if (/nst_[A-Za-z0-9_-]{20,}/.test(text)) faults.push(`${path} shows something like a token`);
      }
      expect(faults).toEqual([]);
    });

    test("the process log of sign-ins, token creation, OAuth and webhook calls holds none of their secrets", async () => {
      const secrets: string[] = [password, "Wrong-pass-word-3318", adminToken, twilioAuthToken, webhookToken, metricsToken, "gh-secret-oauth-9921"];
      // Sign-in (right and wrong), registration, a session in use.
      const b = new Browser(web);
      expect((await b.post("/login", { email: "admin@example.com", password: "Wrong-pass-word-3318" })).status).toBe(401);
      expect((await b.post("/login", { email: "admin@example.com", password })).status).toBe(303);
      secrets.push(b.cookies.get("nst_session")!, await b.csrf());
      const other = new Browser(web);
      expect((await other.register("sweep-user@example.com", "Register-pass-6620")).status).toBe(303);
      secrets.push("Register-pass-6620", other.cookies.get("nst_session")!);
      // Token creation in the UI and the API.
      const ui = await b.post("/tokens", { name: "ui-sweep", _csrf: await b.csrf() });
      secrets.push(/\bnst_[A-Za-z0-9_-]+/.exec(ui.text)![0]);
      const api = await call("POST", "/api/v1/tokens", { headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ name: "api-sweep" }) });
      secrets.push(((await api.json()) as { token: string }).token);
      // OAuth: the code, the state and the access token the provider gave.
      const seen: string[] = [];
      const realFetch = globalThis.fetch;
      globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
        const r = await realFetch(input, init);
        const copy = r.clone();
        const text = await copy.text().catch(() => "");
        for (const m of text.matchAll(/"(?:access_token|id_token)":"([^"]+)"/g)) seen.push(m[1]!);
        return r;
      }) as typeof fetch;
      try {
        fake.user = { sub: "boss-1", email: "boss@example.com", email_verified: true, github_id: 77 };
        const o = new Browser(web);
        const start = await o.get("/auth/github");
        const back = new URL((await realFetch(start.headers.get("location")!, { redirect: "manual" })).headers.get("location")!);
        secrets.push(back.searchParams.get("code")!, back.searchParams.get("state")!, o.cookies.get("nst_oauth")!);
        expect((await o.get(back.pathname + back.search)).status).toBe(303);
        secrets.push(o.cookies.get("nst_session")!);
        // A refused one (wrong state) logs no code either.
        expect((await o.get("/auth/github/callback?code=refused-code-5582&state=refused-state-1190")).status).toBe(400);
        secrets.push("refused-code-5582", "refused-state-1190");
      } finally {
        globalThis.fetch = realFetch;
      }
      expect(seen.length).toBeGreaterThan(0);
      secrets.push(...seen);
      // Webhooks: the secret path, a valid and a bad Twilio signature, a wrong path.
      const form = { "content-type": "application/x-www-form-urlencoded" };
      expect((await call("POST", `/webhooks/smsru/${webhookToken}`, { headers: form, body: "data%5B0%5D=sms_status%0A1%0A103" })).status).toBe(200);
      expect((await call("POST", "/webhooks/smsc/wrong-path-secret-2231", { headers: form, body: "id=1&status=1" })).status).toBe(404);
      const fields = new URLSearchParams({ MessageSid: "SM1", MessageStatus: "delivered" });
      const signature = twilioSignature(twilioAuthToken, `${origin}/webhooks/twilio`, fields);
      expect((await call("POST", "/webhooks/twilio", { headers: { ...form, "x-twilio-signature": signature }, body: fields.toString() })).status).toBe(204);
      expect((await call("POST", "/webhooks/twilio", { headers: { ...form, "x-twilio-signature": "forged-signature-8812" }, body: fields.toString() })).status).toBe(403);
      secrets.push(signature, "forged-signature-8812", "wrong-path-secret-2231");
      expect((await call("GET", "/metrics", { headers: { authorization: `Bearer ${metricsToken}` } })).status).toBe(200);

      const log = JSON.stringify(logger.lines);
      expect(logger.lines.length).toBeGreaterThan(20);
      const found = secrets.filter((s) => s.length >= 8 && log.includes(s));
      expect(found).toEqual([]);
      for (const word of ["nst_session", "Bearer ", "x-twilio-signature", "password"]) expect(`${word}: ${log.toLowerCase().includes(word.toLowerCase())}`).toBe(`${word}: false`);
    });
  });
}
