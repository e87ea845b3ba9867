/** SPEC §9 under hostile use (review of issues 11 and 12): limits under concurrency, bad cookies, redirects, account linking. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { IdentityService } from "../../src/auth/identities";
import { notePeer } from "../../src/http/peer";
import { registerLimits } from "../../src/web/routes/account";
import { backends } from "../support/db";
import { type FakeProvider, startFakeProvider } from "../support/fake-oauth";
import { Browser, origin, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const password = "correct horse battery";

for (const backend of backends()) {
  describe(`[${backend}] §9 hostile use`, () => {
    let fake: FakeProvider;
    let app: WebApp;

    beforeAll(async () => {
      fake = await startFakeProvider({ "test-client": "test-secret" });
      app = await webApp(
        backend,
        { adminEmails: ["victim@example.com"], oauth: { github: null, google: null, oidc: { issuer: fake.url, clientId: "test-client", clientSecret: "test-secret" } } },
        null,
        { timeoutMs: 1_000 },
      );
      await new Browser(app).register("first@example.com");
    });
    afterAll(async () => {
      fake.stop();
      await app.close();
    });

    test("parallel wrong passwords for one e-mail: no more than five are tried, the rest get 429", async () => {
      await new Browser(app).register("target@example.com");
      const replies = await Promise.all(
        Array.from({ length: 12 }, (_, i) => new Browser(app).post("/login", { email: "target@example.com", password: `wrong guess ${i}` })),
      );
      const statuses = replies.map((r) => r.status);
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(5);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(7);
      app.clock.advance(61);
      // A success does not use up the address's budget, and resets the e-mail's.
      expect((await new Browser(app).post("/login", { email: "target@example.com", password })).status).toBe(303);
    });

    test("registration is limited per address: thirty attempts in ten minutes, then 429 with Retry-After and no account", async () => {
      const register = (address: string, email: string) => {
        const request = new Request(`${origin}/register`, { method: "POST", headers: { origin, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ email, password }).toString() });
        notePeer(request, address);
        return app.handle(request);
      };
      const users = async () => Number((await app.database.rows<{ n: number }>(sql`select count(*)::int as n from users`))[0]!.n);
      // Every attempt counts, refused ones too (a refusal can say that an e-mail is taken).
      expect((await register("203.0.113.7", "spam-0@example.com")).status).toBe(303);
      for (let i = 1; i < registerLimits.perAddress; i++) expect((await register("203.0.113.7", `not an e-mail ${i}`)).status).toBe(422);
      const before = await users();
      const blocked = await register("203.0.113.7", "one-more@example.com");
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(blocked.headers.getSetCookie()).toEqual([]);
      expect(await blocked.text()).toContain("Too many registrations");
      expect(await users()).toBe(before);
      // Another address is not affected; after the window the first one may register again.
      expect((await register("203.0.113.8", "elsewhere@example.com")).status).toBe(303);
      app.clock.advance(registerLimits.windowMs / 1000 + 1);
      expect((await register("203.0.113.7", "one-more@example.com")).status).toBe(303);
    }, 180_000);

    test("a cookie that is not valid percent-encoding is ignored, not a 500", async () => {
      const b = new Browser(app);
      for (const path of ["/login", "/", "/register"]) {
        const reply = await b.get(path, { cookie: "nst_session=%E0%A4%A; nst_lang=%" });
        expect(reply.status).toBeLessThan(500);
      }
    });

    test("the language switch never redirects off-site, even with a tab or newline that browsers strip", async () => {
      for (const back of ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example", "https://evil.example"]) {
        const reply = await new Browser(app).post("/lang", { lang: "en", back });
        expect(reply.status).toBe(303);
        expect(reply.headers.get("location")).toBe("/");
      }
      expect((await new Browser(app).post("/lang", { lang: "ru", back: "/clients?tag=a" })).headers.get("location")).toBe("/clients?tag=a");
    });

    test("anyone can call the OAuth callback, and the audit log is append-only: refusals are recorded at most 30 a minute per address", async () => {
      const recorded = async () => Number((await app.database.rows<{ n: number }>(sql`select count(*)::int as n from audit_log where kind = 'oauth.refused'`))[0]!.n);
      const before = await recorded();
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await new Browser(app).get(`/auth/oidc/callback?state=forged${i}&code=x`)).status);
      expect(await recorded()).toBe(before + 30);
      expect(statuses.slice(0, 30).every((s) => s === 400)).toBe(true);
      expect(statuses.slice(30).every((s) => s === 429)).toBe(true);
      app.clock.advance(61);
      expect((await new Browser(app).get("/auth/oidc/callback?state=again")).status).toBe(400);
      app.clock.advance(61);
    });

    test("CSV uploads held in memory: one unconfirmed job per user, and others' never thrown away to make room", async () => {
      const upload = async (b: Browser) => {
        const form = new FormData();
        form.set("file", new Blob(["phone_number\n79101112233\n"], { type: "text/csv" }), "clients.csv");
        form.set("_csrf", await b.csrf());
        const response = await app.handle(new Request(`${origin}/web/clients/import`, { method: "POST", body: form, headers: { cookie: b.cookieHeader(), origin } }));
        const text = await response.text();
        return { status: response.status, job: /\/web\/clients\/import\/(imp_[\w-]+)\/start/.exec(text)?.[1] ?? null };
      };
      const first = new Browser(app);
      await first.register("importer-0@example.com");
      const kept = await upload(first);
      expect(kept.status).toBe(200);
      // One user uploading again and again holds one file, not the whole store.
      for (let i = 0; i < 3; i++) expect((await upload(first)).status).toBe(200);
      const mine = await upload(first);
      expect((await first.get(`/web/clients/import/${kept.job}`)).status).toBe(404);
      // Nineteen other users fill the store; the next one is told to wait, and nobody's upload is lost.
      for (let i = 1; i < 20; i++) {
        const b = new Browser(app);
        await b.register(`importer-${i}@example.com`);
        expect((await upload(b)).status).toBe(200);
      }
      const late = new Browser(app);
      await late.register("importer-late@example.com");
      expect((await upload(late)).status).toBe(429);
      expect((await first.get(`/web/clients/import/${mine.job}`)).status).toBe(200);
    });

    test("an address taken off ADMIN_EMAILS no longer signs in through its linked identity", async () => {
      const identity = { provider: "oidc" as const, subject: "leaver-sub", email: "leaver@example.com", emailVerified: true };
      const before = await new IdentityService(app.database, app.clock, ["leaver@example.com"]).signIn(identity);
      expect(before.ok).toBe(true);
      // The next start of the service reads a list without it; the provider still vouches for the subject.
      const after = await new IdentityService(app.database, app.clock, ["someone-else@example.com"]).signIn(identity);
      expect(after).toEqual({ ok: false, reason: "not-allowed" });
      // Still allowed: the same subject after the e-mail changed at the provider (the account's e-mail counts).
      const renamed = await new IdentityService(app.database, app.clock, ["leaver@example.com"]).signIn({ ...identity, email: "new@elsewhere.example" });
      expect(renamed.ok).toBe(true);
    });

    test("a NUL character in a form field or query parameter is a 422 naming the field, never a 500, and nothing is written", async () => {
      const b = new Browser(app);
      await b.register("nul@example.com");
      const csrf = await b.csrf();
      const count = async (table: string) => Number((await app.database.rows<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table)}`))[0]!.n);
      const [clients, mailings, tokens] = [await count("clients"), await count("mailings"), await count("api_tokens")];
      const posts: [Browser, string, Record<string, string>, string][] = [
        [new Browser(app), "/login", { email: "nul@example.com\u0000", password: "whatever it is" }, "email"],
        [new Browser(app), "/register", { email: "x\u0000@example.com", password }, "email"],
        [b, "/tokens", { _csrf: csrf, name: "a\u0000b" }, "name"],
        [b, "/clients", { _csrf: csrf, phone_number: "79101112233", tag: "a\u0000b", timezone: "UTC" }, "tag"],
        [b, "/mailings", { _csrf: csrf, text: "a\u0000b", start_time: "2026-12-01T09:00", end_time: "2026-12-02T09:00" }, "text"],
      ];
      for (const [who, path, form, field] of posts) {
        const reply = await who.post(path, form);
        expect(reply.status, path).toBe(422);
        expect(reply.text).toContain(`“${field}”`);
      }
      // A hand-made token id the API's parser refuses: the page's 404, not the API's JSON.
      for (const id of ["0", "007"]) {
        const revoke = await b.post(`/tokens/${id}/revoke`, { _csrf: csrf });
        expect(revoke.status).toBe(404);
        expect(revoke.headers.get("content-type")).toStartWith("text/html");
      }
      const list = await b.get("/clients?tag=a%00b");
      expect(list.status).toBe(422);
      expect(list.text).toContain("“tag”");
      expect([await count("clients"), await count("mailings"), await count("api_tokens")]).toEqual([clients, mailings, tokens]);
    });

    test("two first sign-ins with one new e-mail at once (GitHub and Google, or OAuth and registration) make one account, no 500", async () => {
      const service = new IdentityService(app.database, app.clock, ["twice@example.com"]);
      const results = await Promise.all(
        ["github", "google", "oidc"].map((provider) => service.signIn({ provider: provider as "github", subject: `twice-${provider}`, email: "twice@example.com", emailVerified: true })),
      );
      expect(results.map((r) => r.ok)).toEqual([true, true, true]);
      const users = await app.database.rows<{ id: number }>(sql`select id from users where email = 'twice@example.com'`);
      expect(users.length).toBe(1);
      const links = await app.database.rows<{ user_id: number }>(sql`select user_id from identities where subject like 'twice-%'`);
      expect(links.map((l) => l.user_id)).toEqual([users[0]!.id, users[0]!.id, users[0]!.id]);
    });

    test("an account registered (unverified) with an admin's e-mail loses the registrant's password, sessions and tokens when the admin links it", async () => {
      // The attacker registers the admin's address first, keeps a session and makes an API token.
      const attacker = new Browser(app);
      expect((await attacker.register("Victim@Example.com")).status).toBe(303);
      const csrf = await attacker.csrf("/tokens");
      const created = await attacker.post("/tokens", { _csrf: csrf, name: "backdoor" });
      const secret = /nst_[A-Za-z0-9_-]{40,}/.exec(created.text)![0];
      expect((await app.handle(new Request("http://localhost/api/v1/tokens", { headers: { authorization: `Bearer ${secret}` } }))).status).toBe(200);

      // The real admin signs in through the identity provider: the account is linked and made admin.
      fake.user = { sub: "victim-sub", email: "victim@example.com", email_verified: true };
      const admin = new Browser(app);
      const start = await admin.get("/auth/oidc");
      const answer = await fetch(start.headers.get("location")!, { redirect: "manual" });
      const back = new URL(answer.headers.get("location")!);
      expect((await admin.get(back.pathname + back.search)).status).toBe(303);
      expect((await admin.get("/admin")).status).toBe(200);

      // None of what the registrant holds reaches the admin account.
      expect((await attacker.get("/admin")).status).not.toBe(200);
      expect((await attacker.get("/")).status).toBe(303);
      expect((await new Browser(app).post("/login", { email: "victim@example.com", password })).status).toBe(401);
      const api = await app.handle(new Request("http://localhost/api/v1/audit", { headers: { authorization: `Bearer ${secret}` } }));
      expect(api.status).toBe(401);
      const [row] = await app.database.rows<{ password_hash: string | null }>(sql`select password_hash from users where email = 'victim@example.com'`);
      expect(row!.password_hash).toBeNull();
    });
  });
}
