/**
 * Access matrix (issue 14 item 6, the harness): every route in `matrix` × every identity, asserting
 * the exact status. A new route is one line: its method, path and the status each identity gets.
 * Identities: anonymous, operator session, admin session, operator API token, admin API token,
 * revoked token, expired session, and a cross-site request (an admin session with a foreign Origin).
 * The admin area and OAuth routes are not in it yet (being built); disabled users come with them.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { createApp } from "../../src/app";
import { TokenService } from "../../src/auth/tokens";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { backends, freshDatabase, type TestDatabase } from "../support/db";
import { Browser, origin } from "../support/web";

setDefaultTimeout(120_000);

const identities = ["anonymous", "operatorSession", "adminSession", "operatorToken", "adminToken", "revokedToken", "expiredSession", "crossSite"] as const;
type Identity = (typeof identities)[number];
type Row = { method: string; path: string; body?: Record<string, string | unknown>; expect: Record<Identity, number> };

/** Shorthands for the usual shapes of a row. */
const api = (ok: number): Record<Identity, number> => ({
  // The API takes bearer tokens only: a session cookie (sent by a browser on its own, even from
  // another site) authenticates nothing there.
  anonymous: 401, operatorSession: 401, adminSession: 401, operatorToken: ok, adminToken: ok, revokedToken: 401, expiredSession: 401, crossSite: 401,
});
/** A signed-in page (GET): anonymous and token-only callers are sent to /login. */
const page = (admin = 200, operator = 200): Record<Identity, number> => ({
  anonymous: 303, operatorSession: operator, adminSession: admin, operatorToken: 303, adminToken: 303, revokedToken: 303, expiredSession: 303, crossSite: admin,
});
/** A signed-in form (POST): as a page, but a foreign Origin is refused (CSRF). */
const form = (admin: number, operator = admin): Record<Identity, number> => ({ ...page(admin, operator), crossSite: 403 });
const open = (status: number): Record<Identity, number> => Object.fromEntries(identities.map((i) => [i, status])) as Record<Identity, number>;

const matrix: Row[] = [
  { method: "GET", path: "/healthz", expect: open(200) },
  { method: "GET", path: "/api/v1/clients", expect: api(200) },
  { method: "GET", path: "/api/v1/clients/{client}", expect: api(200) },
  { method: "GET", path: "/api/v1/mailings", expect: api(200) },
  { method: "GET", path: "/api/v1/mailings/{mailing}", expect: api(200) },
  { method: "GET", path: "/api/v1/stats", expect: api(200) },
  { method: "GET", path: "/api/v1/stats/{mailing}", expect: api(200) },
  { method: "GET", path: "/api/v1/tokens", expect: api(200) },
  { method: "GET", path: "/api/v1/clients/export", expect: api(200) },
  { method: "POST", path: "/api/v1/clients", body: { tag: 5 }, expect: api(422) },
  { method: "POST", path: "/api/v1/mailings", body: { text: "" }, expect: api(422) },
  { method: "GET", path: "/", expect: page() },
  { method: "GET", path: "/clients", expect: page() },
  { method: "GET", path: "/mailings", expect: page() },
  { method: "GET", path: "/tokens", expect: page() },
  { method: "GET", path: "/admin", expect: page(200, 403) },
  { method: "POST", path: "/tokens", body: { name: "" }, expect: form(422) },
  { method: "GET", path: "/login", expect: { ...open(200), operatorSession: 303, adminSession: 303, crossSite: 303 } },
];

for (const backend of backends()) {
  describe(`[${backend}] access matrix`, () => {
    let t: TestDatabase;
    let app: Awaited<ReturnType<typeof createApp>>;
    const clock = new FixedClock("2026-12-01T10:00:00Z");
    const send = (request: Request) => app.handle(request);
    const as = {} as Record<Identity, { headers: Record<string, string>; csrf?: string }>;
    const ids = { client: "0", mailing: "0" };

    beforeAll(async () => {
      t = await freshDatabase(backend);
      app = await createApp({ config: { adminApiKey: null }, database: t.database, clock, logger: memoryLogger(), signals: silentSignals });
      const webApp = { database: t.database, clock, handle: send, close: async () => {} };
      const signIn = async (email: string) => {
        const b = new Browser(webApp);
        expect((await b.register(email)).status).toBeLessThan(400);
        return b;
      };
      const admin = await signIn("admin@example.com"); // the first account is the admin
      const operator = await signIn("operator@example.com");
      const expired = await signIn("expired@example.com");
      const tokens = new TokenService(t.database, clock, memoryLogger());
      const userId = async (email: string) => Number((await t.database.rows<{ id: number }>(sql`select id from users where email = ${email}`))[0]!.id);
      const operatorActor = { kind: "session" as const, role: "operator" as const, userId: await userId("operator@example.com"), tokenId: null };
      const adminActor = { kind: "session" as const, role: "admin" as const, userId: await userId("admin@example.com"), tokenId: null };
      const operatorToken = await tokens.create(operatorActor, "op", clock.now());
      const adminToken = await tokens.create(adminActor, "adm", clock.now());
      const revoked = await tokens.create(operatorActor, "gone", clock.now());
      await tokens.revoke(operatorActor, revoked.id, clock.now());
      const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
      const session = async (b: Browser) => ({ headers: { cookie: b.cookieHeader(), origin }, csrf: await b.csrf("/tokens") });
      as.anonymous = { headers: {} };
      as.operatorSession = await session(operator);
      as.adminSession = await session(admin);
      as.operatorToken = bearer(operatorToken.token);
      as.adminToken = bearer(adminToken.token);
      as.revokedToken = bearer(revoked.token);
      as.expiredSession = { headers: { cookie: expired.cookieHeader(), origin } };
      as.crossSite = { ...as.adminSession, headers: { ...as.adminSession.headers, origin: "https://evil.example" } };

      const client = await send(new Request(`${origin}/api/v1/clients`, { method: "POST", headers: { ...as.adminToken.headers, "content-type": "application/json" }, body: JSON.stringify({ phone_number: "79101234567" }) }));
      ids.client = String(((await client.json()) as { id: number }).id);
      const mailing = await send(new Request(`${origin}/api/v1/mailings`, { method: "POST", headers: { ...as.adminToken.headers, "content-type": "application/json" }, body: JSON.stringify({ text: "hi", start_time: "2026-12-02T09:00:00", end_time: "2026-12-02T18:00:00" }) }));
      ids.mailing = String(((await mailing.json()) as { id: number }).id);
      // The expired session: its expiry (which slides while it is used) moved into the past.
      const expiredId = await userId("expired@example.com");
      await t.database.rows(sql`update sessions set expires_at = ${new Date(clock.now().getTime() - 60_000).toISOString()}::timestamptz where user_id = ${expiredId}`);
    });
    afterAll(async () => {
      await app?.close();
      await t?.drop();
    });

    test("every route × every identity answers the expected status", async () => {
      const mismatches: string[] = [];
      for (const row of matrix) {
        for (const who of identities) {
          const identity = as[who];
          const headers: Record<string, string> = { ...identity.headers };
          let body: string | undefined;
          if (row.body) {
            const isForm = !row.path.startsWith("/api/");
            headers["content-type"] = isForm ? "application/x-www-form-urlencoded" : "application/json";
            body = isForm ? new URLSearchParams({ ...(row.body as Record<string, string>), _csrf: identity.csrf ?? "" }).toString() : JSON.stringify(row.body);
          }
          const path = row.path.replace("{client}", ids.client).replace("{mailing}", ids.mailing);
          const r = await send(new Request(`${origin}${path}`, { method: row.method, headers, body, redirect: "manual" }));
          if (r.status !== row.expect[who]) mismatches.push(`${row.method} ${row.path} as ${who}: ${r.status}, expected ${row.expect[who]}`);
        }
      }
      expect(mismatches).toEqual([]);
    });
  });
}
