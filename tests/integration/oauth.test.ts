/** SPEC §9 OAuth2 sign-in (issue 12): the flow against a fake provider on 127.0.0.1, every refusal, linking. */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { type FakeProvider, startFakeProvider } from "../support/fake-oauth";
import { freePort } from "../support/processes";
import { Browser, type WebApp, type WebReply, webApp } from "../support/web";

setDefaultTimeout(60_000);

const allowed = ["boss@example.com", "second@example.com", "linked@example.com", "hub@example.com"];

/** Follows /auth/{provider} → the fake's authorize → back to the callback; the callback's reply. */
async function signIn(b: Browser, provider: string): Promise<{ start: WebReply; authorizeUrl: URL; callbackPath: string; reply: WebReply }> {
  const start = await b.get(`/auth/${provider}`);
  expect(start.status).toBe(303);
  const authorizeUrl = new URL(start.headers.get("location")!);
  const answer = await fetch(authorizeUrl, { redirect: "manual" });
  expect(answer.status).toBe(302);
  const back = new URL(answer.headers.get("location")!);
  const callbackPath = back.pathname + back.search;
  return { start, authorizeUrl, callbackPath, reply: await b.get(callbackPath) };
}

for (const backend of backends()) {
  describe(`[${backend}] §9 OAuth2 sign-in`, () => {
    let fake: FakeProvider;
    let app: WebApp;
    const count = async (table: string) => Number((await app.database.rows<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table)}`))[0]!.n);
    const refusals = () => app.database.rows<{ target: string; detail: { reason: string } }>(sql`select target, detail from audit_log where kind = 'oauth.refused' order by id`);

    beforeAll(async () => {
      fake = await startFakeProvider({ "test-client": "test-secret", "google-client": "google-secret", "gh-client": "gh-secret" });
      app = await webApp(
        backend,
        {
          adminEmails: allowed,
          oauth: {
            github: { clientId: "gh-client", clientSecret: "gh-secret" },
            google: { clientId: "google-client", clientSecret: "google-secret" },
            oidc: { issuer: fake.url, clientId: "test-client", clientSecret: "test-secret" },
          },
        },
        null,
        { github: fake.githubEndpoints(), googleIssuer: fake.url, timeoutMs: 1_000 },
      );
    });
    afterAll(async () => {
      fake.stop();
      await app.close();
    });
    beforeEach(() => {
      fake.fault = null;
      fake.user = { sub: "user-1", email: "boss@example.com", email_verified: true, github_id: 4242 };
    });

    test("the sign-in page offers a button per configured provider", async () => {
      const login = await new Browser(app).get("/login");
      for (const p of ["github", "google", "oidc"]) expect(login.text).toContain(`href="/auth/${p}"`);
      expect(login.text).toContain("Sign in with single sign-on");
    });

    test("OIDC: an allowed, verified e-mail signs in as a new admin; state, PKCE S256 and nonce on the way; the state cookie is short-lived, HttpOnly, SameSite=Lax and single use", async () => {
      const b = new Browser(app);
      const { start, authorizeUrl, reply } = await signIn(b, "oidc");
      const stateCookie = start.headers.getSetCookie().find((c) => c.startsWith("nst_oauth="))!;
      expect(stateCookie).toContain("HttpOnly");
      expect(stateCookie).toContain("SameSite=Lax");
      expect(stateCookie).toContain("Max-Age=600");
      expect(stateCookie).toContain("Path=/auth/");
      expect(authorizeUrl.origin).toBe(fake.url);
      expect(authorizeUrl.searchParams.get("code_challenge_method")).toBe("S256");
      expect(authorizeUrl.searchParams.get("state")!.length).toBeGreaterThan(20);
      expect(authorizeUrl.searchParams.get("nonce")!.length).toBeGreaterThan(20);
      expect(authorizeUrl.searchParams.get("redirect_uri")).toBe("http://localhost/auth/oidc/callback");
      expect(fake.tokenRequests.at(-1)!.get("code_verifier")!.length).toBeGreaterThan(40);

      expect(reply.status).toBe(303);
      expect(reply.headers.get("location")).toBe("/");
      expect(reply.headers.getSetCookie().some((c) => c.startsWith("nst_oauth=;") && c.includes("Max-Age=0"))).toBe(true);
      expect(b.cookies.has("nst_oauth")).toBe(false);
      const home = await b.get("/");
      expect(home.status).toBe(200);
      expect(home.text).toContain("boss@example.com");
      expect((await b.get("/admin")).status).toBe(200);
      const [user] = await app.database.rows<{ role: string; password_hash: string | null }>(sql`select role, password_hash from users where email = 'boss@example.com'`);
      expect(user).toEqual({ role: "admin", password_hash: null });
      const links = await app.database.rows<{ provider: string; subject: string; email: string }>(sql`select provider, subject, email from identities`);
      expect(links).toEqual([{ provider: "oidc", subject: "user-1", email: "boss@example.com" }]);
      const [event] = await app.database.rows<{ kind: string; target: string }>(sql`select kind, target from audit_log where kind = 'signin.oauth'`);
      expect(event).toEqual({ kind: "signin.oauth", target: "oidc" });
    });

    test("a second sign-in with the same subject finds the same user after the e-mail changed at the provider", async () => {
      const [before] = await app.database.rows<{ id: number }>(sql`select id from users where email = 'boss@example.com'`);
      fake.user = { sub: "user-1", email: "renamed@elsewhere.example", email_verified: true };
      const b = new Browser(app);
      const { reply } = await signIn(b, "oidc");
      expect(reply.status).toBe(303);
      expect((await b.get("/")).text).toContain("boss@example.com");
      expect(await count("identities")).toBe(1);
      expect((await app.database.rows<{ id: number }>(sql`select id from users where email = 'boss@example.com'`))[0]).toEqual(before!);
    });

    test("an existing password account with an allowed e-mail is linked (and made admin), not duplicated", async () => {
      const b = new Browser(app);
      await b.register("Linked@Example.com");
      const [account] = await app.database.rows<{ id: number; role: string }>(sql`select id, role from users where email = 'linked@example.com'`);
      expect(account!.role).toBe("operator");
      fake.user = { sub: "user-linked", email: "linked@example.com", email_verified: true };
      const { reply } = await signIn(new Browser(app), "oidc");
      expect(reply.status).toBe(303);
      const rows = await app.database.rows<{ id: number; role: string }>(sql`select id, role from users where lower(email) = 'linked@example.com'`);
      expect(rows).toEqual([{ id: account!.id, role: "admin" }]);
      const [link] = await app.database.rows<{ user_id: number }>(sql`select user_id from identities where subject = 'user-linked'`);
      expect(link!.user_id).toBe(account!.id);
    });

    test("the e-mail is read from userinfo when the ID token carries none", async () => {
      fake.fault = "no-email-claim";
      fake.user = { sub: "user-2", email: "second@example.com", email_verified: true };
      const { reply } = await signIn(new Browser(app), "oidc");
      expect(reply.status).toBe(303);
      expect((await app.database.rows(sql`select 1 from identities where subject = 'user-2'`)).length).toBe(1);
    });

    describe("refusals: a clear page in the user's language, an audit record, nothing created", () => {
      let users = 0;
      let identities = 0;
      beforeEach(async () => {
        users = await count("users");
        identities = await count("identities");
      });
      const expectNothingCreated = async (b: Browser) => {
        expect(await count("users")).toBe(users);
        expect(await count("identities")).toBe(identities);
        expect(b.cookies.has("nst_session")).toBe(false);
      };

      test("a wrong, missing or cookie-less state", async () => {
        const b = new Browser(app, { "accept-language": "ru" });
        const start = await b.get("/auth/oidc");
        const state = new URL(start.headers.get("location")!).searchParams.get("state")!;
        const wrong = await b.get(`/auth/oidc/callback?code=abc&state=${state}x`);
        expect(wrong.status).toBe(400);
        expect(wrong.text).toContain("Вход отклонён");
        expect(wrong.text).toContain("Начните заново");
        expect(b.cookies.has("nst_oauth")).toBe(false);
        // The cookie went with the first try: even the right state is refused now (single use).
        expect((await b.get(`/auth/oidc/callback?code=abc&state=${state}`)).status).toBe(400);
        await b.get("/auth/oidc");
        expect((await b.get("/auth/oidc/callback?code=abc")).status).toBe(400);
        // A state started for one provider does not finish another.
        const other = await b.get("/auth/oidc");
        const s2 = new URL(other.headers.get("location")!).searchParams.get("state")!;
        expect((await b.get(`/auth/google/callback?code=abc&state=${s2}`)).status).toBe(400);
        await expectNothingCreated(b);
        expect((await refusals()).at(-1)!.detail.reason).toBe("state");
      });

      test("a replayed code", async () => {
        const b = new Browser(app);
        const first = await signIn(b, "oidc");
        expect(first.reply.status).toBe(303);
        users = await count("users");
        identities = await count("identities");
        // An attacker with the callback URL and a copy of the state cookie: the provider refuses the used code.
        const thief = new Browser(app);
        const start = await thief.get("/auth/oidc");
        expect(start.status).toBe(303);
        const stolen = first.start.headers.getSetCookie().find((c) => c.startsWith("nst_oauth="))!.split(";")[0]!.slice("nst_oauth=".length);
        thief.cookies.set("nst_oauth", stolen);
        const replay = await thief.get(first.callbackPath);
        expect(replay.status).toBe(400);
        expect(replay.text).toContain("did not grant");
        await expectNothingCreated(thief);
        expect((await refusals()).at(-1)!.detail.reason).toBe("provider");
      });

      test("a provider error (the user said no)", async () => {
        fake.fault = "deny";
        const b = new Browser(app);
        const { reply } = await signIn(b, "oidc");
        expect(reply.status).toBe(400);
        expect(reply.text).toContain("The identity provider did not grant the sign-in.");
        await expectNothingCreated(b);
      });

      test("an unverified e-mail", async () => {
        fake.user = { sub: "user-9", email: "second@example.com", email_verified: false };
        const b = new Browser(app);
        const { reply } = await signIn(b, "oidc");
        expect(reply.status).toBe(403);
        expect(reply.text).toContain("not verified");
        await expectNothingCreated(b);
        expect((await refusals()).at(-1)!.detail.reason).toBe("unverified");
      });

      test("an e-mail not in ADMIN_EMAILS", async () => {
        fake.user = { sub: "user-10", email: "stranger@example.com", email_verified: true };
        const b = new Browser(app);
        const { reply } = await signIn(b, "oidc");
        expect(reply.status).toBe(403);
        expect(reply.text).toContain("may not sign in here");
        await expectNothingCreated(b);
        const last = (await refusals()).at(-1)!;
        expect(last.detail).toMatchObject({ reason: "not-allowed", email: "stranger@example.com" });
      });

      for (const [fault, reason, status] of [
        ["token-garbage", "unexpected", 502],
        ["token-503", "network", 502],
        ["token-hang", "network", 502],
        ["expired", "unexpected", 502],
        ["wrong-nonce", "unexpected", 502],
        ["wrong-audience", "unexpected", 502],
        ["extra-audience", "unexpected", 502],
        ["wrong-issuer", "unexpected", 502],
        ["bad-signature", "unexpected", 502],
      ] as const) {
        test(`a provider that answers badly: ${fault}`, async () => {
          fake.fault = fault;
          fake.user = { sub: `user-${fault}`, email: "second@example.com", email_verified: true };
          const b = new Browser(app);
          const { reply } = await signIn(b, "oidc");
          expect(reply.status).toBe(status);
          expect(reply.text).toContain(reason === "network" ? "cannot be reached" : "could not be trusted");
          await expectNothingCreated(b);
          expect((await refusals()).at(-1)!.detail.reason).toBe(reason);
        });
      }

      test("a provider that is down: its discovery document cannot be read", async () => {
        const down = await webApp(backend, { adminEmails: allowed, oauth: { github: null, google: null, oidc: { issuer: `http://127.0.0.1:${freePort()}`, clientId: "c", clientSecret: "s" } } });
        try {
          const b = new Browser(down, { "accept-language": "en" });
          const reply = await b.get("/auth/oidc");
          expect(reply.status).toBe(502);
          expect(reply.text).toContain("cannot be reached");
          expect(b.cookies.has("nst_oauth")).toBe(false);
        } finally {
          await down.close();
        }
      });

      test("a linked but disabled user", async () => {
        await app.database.rows(sql`update users set disabled = true where email = 'boss@example.com'`);
        try {
          const b = new Browser(app);
          const { reply } = await signIn(b, "oidc");
          expect(reply.status).toBe(403);
          expect(reply.text).toContain("disabled");
          expect(b.cookies.has("nst_session")).toBe(false);
        } finally {
          await app.database.rows(sql`update users set disabled = false where email = 'boss@example.com'`);
        }
      });
    });

    test("GitHub (its fixed endpoints answered by the fake): state and PKCE, the primary verified e-mail, the numeric id as subject", async () => {
      fake.user = { sub: "octo", email: "hub@example.com", email_verified: true, github_id: 77 };
      const b = new Browser(app);
      const { authorizeUrl, reply } = await signIn(b, "github");
      expect(authorizeUrl.pathname).toBe("/github/login/oauth/authorize");
      expect(authorizeUrl.searchParams.get("code_challenge_method")).toBe("S256");
      expect(authorizeUrl.searchParams.has("nonce")).toBe(false);
      expect(reply.status).toBe(303);
      const [link] = await app.database.rows<{ subject: string; email: string }>(sql`select subject, email from identities where provider = 'github'`);
      expect(link).toEqual({ subject: "77", email: "hub@example.com" });
    });

    test("GitHub: an unverified primary e-mail is refused; a replayed code (GitHub's 200 with an error) too", async () => {
      fake.user = { sub: "octo2", email: "second@example.com", email_verified: false, github_id: 78 };
      const first = await signIn(new Browser(app), "github");
      expect(first.reply.status).toBe(403);
      const replay = new Browser(app);
      replay.cookies.set("nst_oauth", first.start.headers.getSetCookie().find((c) => c.startsWith("nst_oauth="))!.split(";")[0]!.slice(10));
      expect((await replay.get(first.callbackPath)).status).toBe(400);
      expect((await app.database.rows(sql`select 1 from identities where subject = '78'`)).length).toBe(0);
    });

    test("GitHub: a token endpoint that cannot be reached", async () => {
      const port = freePort();
      const gh = await webApp(backend, { adminEmails: allowed, oauth: { github: { clientId: "gh-client", clientSecret: "gh-secret" }, google: null, oidc: null } }, null, {
        github: { ...fake.githubEndpoints(), token: `http://127.0.0.1:${port}/token` },
      });
      try {
        const { reply } = await signIn(new Browser(gh), "github");
        expect(reply.status).toBe(502);
        expect(reply.text).toContain("cannot be reached");
        expect(Number((await gh.database.rows<{ n: number }>(sql`select count(*)::int as n from users`))[0]!.n)).toBe(0);
      } finally {
        await gh.close();
      }
    });

    test("Google (OIDC at its issuer, moved to the fake): signs in with the ID token", async () => {
      fake.user = { sub: "g-1", email: "second@example.com", email_verified: true };
      const { authorizeUrl, reply } = await signIn(new Browser(app), "google");
      expect(authorizeUrl.searchParams.get("client_id")).toBe("google-client");
      expect(reply.status).toBe(303);
      const [link] = await app.database.rows<{ provider: string }>(sql`select provider from identities where subject = 'g-1'`);
      expect(link!.provider).toBe("google");
    });
  });
}

describe("§9 OAuth2: providers without credentials", () => {
  test("no button and no route", async () => {
    const app = await webApp("pglite");
    try {
      const b = new Browser(app);
      expect((await b.get("/login")).text).not.toContain("/auth/");
      expect((await b.get("/auth/github")).status).toBe(404);
      expect((await b.get("/auth/oidc/callback?code=x&state=y")).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});
