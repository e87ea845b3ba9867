/** SPEC §9 accounts, sessions, CSRF and the page guards, through app.handle (no browser). */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { sha256Hex } from "../../src/auth/crypto";
import { UserService } from "../../src/auth/users";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const password = "correct horse battery";

for (const backend of backends()) {
  describe(`[${backend}] §9 accounts and sessions`, () => {
    let app: WebApp;
    const admin = () => new Browser(app);
    beforeAll(async () => {
      app = await webApp(backend);
    });
    afterAll(() => app.close());

    test("a fresh install leads / to registering the first (admin) account", async () => {
      const b = admin();
      const home = await b.get("/");
      expect(home.status).toBe(303);
      expect(home.headers.get("location")).toBe("/register");
      const form = await b.get("/register");
      expect(form.text).toContain('<form method="post" action="/register"');
      expect(form.text).toMatch(/<label for="email">/);
    });

    test("register: the first account is admin, the session cookie is HttpOnly, SameSite=Lax, Path=/, not Secure over http", async () => {
      const b = admin();
      const reply = await b.register("Boss@Example.com");
      expect(reply.status).toBe(303);
      expect(reply.headers.get("location")).toBe("/");
      const cookie = reply.headers.getSetCookie().find((c) => c.startsWith("nst_session="))!;
      expect(cookie).toContain("HttpOnly");
      expect(cookie).toContain("SameSite=Lax");
      expect(cookie).toContain("Path=/");
      expect(cookie).not.toContain("Secure");
      const token = b.cookies.get("nst_session")!;
      // Stored as its SHA-256 only.
      const rows = await app.database.rows<{ id: string }>(sql`select id from sessions`);
      expect(rows.map((r) => r.id)).toEqual([await sha256Hex(token)]);
      const [user] = await app.database.rows<{ email: string; role: string; password_hash: string }>(sql`select * from users`);
      expect(user!.role).toBe("admin");
      expect(user!.email).toBe("boss@example.com");
      expect(user!.password_hash).toStartWith("$argon2id$");
      const home = await b.get("/");
      expect(home.status).toBe(200);
      expect(home.text).toContain('href="/admin"');
      expect((await b.get("/admin")).status).toBe(200);
    });

    test("the second account is an operator: no admin link, /admin answers 403", async () => {
      const b = new Browser(app);
      expect((await b.register("op@example.com")).status).toBe(303);
      const home = await b.get("/");
      expect(home.text).not.toContain('href="/admin"');
      expect((await b.get("/admin")).status).toBe(403);
      const [row] = await app.database.rows<{ role: string }>(sql`select role from users where email = 'op@example.com'`);
      expect(row!.role).toBe("operator");
    });

    test("registration errors come back beside their fields with the e-mail kept (never the password)", async () => {
      const b = new Browser(app);
      const reply = await b.post("/register", { email: "op@example.com", password: "short" });
      expect(reply.status).toBe(422);
      expect(reply.text).toContain('value="op@example.com"');
      expect(reply.text).toContain("already exists");
      expect(reply.text).toContain("at least 10 characters");
      expect(reply.text).not.toContain('value="short"');
    });

    test("every sign-in makes a fresh session id; sign-out ends it", async () => {
      const b = new Browser(app);
      expect((await b.post("/login", { email: "op@example.com", password })).status).toBe(303);
      const first = b.cookies.get("nst_session")!;
      // Signing in again while signed in is a write with a session cookie: it needs the token too.
      expect((await b.post("/login", { email: "op@example.com", password })).status).toBe(403);
      expect((await b.post("/login", { email: "op@example.com", password, _csrf: await b.csrf() })).status).toBe(303);
      const second = b.cookies.get("nst_session")!;
      expect(second).not.toBe(first);
      // The session this browser had before signing in again is gone.
      const old = new Browser(app);
      old.cookies.set("nst_session", first);
      expect((await old.get("/")).status).toBe(303);
      const out = await b.post("/logout", { _csrf: await b.csrf() });
      expect(out.status).toBe(303);
      expect(out.headers.get("location")).toBe("/login");
      expect(b.cookies.has("nst_session")).toBe(false);
      const replay = new Browser(app);
      replay.cookies.set("nst_session", second);
      expect((await replay.get("/")).status).toBe(303);
    });

    test("a wrong password is refused without saying whether the e-mail exists", async () => {
      const b = new Browser(app);
      const wrong = await b.post("/login", { email: "op@example.com", password: "wrong password!" });
      const unknown = await b.post("/login", { email: "nobody@example.com", password: "wrong password!" });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(wrong.text).toContain("Wrong e-mail or password.");
      expect(b.cookies.has("nst_session")).toBe(false);
    });

    test("five failed sign-ins for one e-mail within a minute → 429 for that e-mail, even with the right password", async () => {
      const b = new Browser(app);
      for (let i = 0; i < 5; i++) {
        expect((await b.post("/login", { email: "boss@example.com", password: `wrong ${i} wrong` })).status).toBe(401);
      }
      const blocked = await b.post("/login", { email: "BOSS@example.com", password });
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(b.cookies.has("nst_session")).toBe(false);
      // Another e-mail is not affected.
      expect((await new Browser(app).post("/login", { email: "op@example.com", password })).status).toBe(303);
      app.clock.advance(61);
      expect((await b.post("/login", { email: "boss@example.com", password })).status).toBe(303);
    });

    test("sessions slide: a session used after an hour is renewed (cookie re-sent, expiry moved)", async () => {
      const b = new Browser(app);
      await b.post("/login", { email: "op@example.com", password });
      const id = await sha256Hex(b.cookies.get("nst_session")!);
      const before = await app.database.rows<{ e: number }>(sql`select extract(epoch from expires_at)::float8 as e from sessions where id = ${id}`);
      app.clock.advance(2 * 3600);
      const page = await b.get("/");
      expect(page.status).toBe(200);
      expect(page.headers.getSetCookie().some((c) => c.startsWith("nst_session=") && c.includes("Max-Age=604800"))).toBe(true);
      const after = await app.database.rows<{ e: number }>(sql`select extract(epoch from expires_at)::float8 as e from sessions where id = ${id}`);
      expect(after[0]!.e - before[0]!.e).toBe(2 * 3600);
      // Past its expiry without use, it is gone.
      app.clock.advance(8 * 24 * 3600);
      expect((await b.get("/")).status).toBe(303);
      // The next sign-in (anyone's) deletes expired sessions.
      await new Browser(app).post("/login", { email: "op@example.com", password });
      expect(await app.database.rows(sql`select id from sessions where id = ${id}`)).toEqual([]);
    });

    test("a disabled user's session stops working at once", async () => {
      const b = new Browser(app);
      await b.post("/login", { email: "op@example.com", password });
      expect((await b.get("/")).status).toBe(200);
      const [user] = await app.database.rows<{ id: number }>(sql`select id from users where email = 'op@example.com'`);
      await new UserService(app.database, app.clock).setDisabled(user!.id, true);
      expect((await b.get("/")).status).toBe(303);
      expect((await new Browser(app).post("/login", { email: "op@example.com", password })).status).toBe(401);
      await new UserService(app.database, app.clock).setDisabled(user!.id, false);
    });
  });

  describe(`[${backend}] §9 CSRF`, () => {
    let app: WebApp;
    let b: Browser;
    const tokenCount = async () => (await app.database.rows<{ n: number }>(sql`select count(*)::int as n from api_tokens`))[0]!.n;
    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app);
      await b.register("boss@example.com");
    });
    afterAll(() => app.close());

    test("a form post with the session cookie but no token is refused and changes nothing", async () => {
      const reply = await b.post("/tokens", { name: "forged" });
      expect(reply.status).toBe(403);
      expect(await tokenCount()).toBe(0);
    });

    test("a cross-site form post is refused even with a valid token, by Origin or by Sec-Fetch-Site", async () => {
      const csrf = await b.csrf();
      expect((await b.post("/tokens", { name: "x", _csrf: csrf }, { origin: "https://evil.example" })).status).toBe(403);
      expect((await b.post("/tokens", { name: "x", _csrf: csrf }, { origin: "null" })).status).toBe(403);
      const noOrigin = await b.send("POST", "/tokens", { form: { name: "x", _csrf: csrf }, headers: { origin: undefined as never, "sec-fetch-site": "cross-site" } });
      expect(noOrigin.status).toBe(403);
      expect(await tokenCount()).toBe(0);
      // Signing out from another site does not work either.
      expect((await b.post("/logout", { _csrf: csrf }, { origin: "https://evil.example" })).status).toBe(403);
      expect((await b.get("/")).status).toBe(200);
    });

    test("a wrong token is refused; the right one in the form field or the htmx header is accepted", async () => {
      const csrf = await b.csrf();
      expect((await b.post("/tokens", { name: "x", _csrf: "0".repeat(64) })).status).toBe(403);
      expect((await b.post("/tokens", { name: "by-field", _csrf: csrf })).status).toBe(200);
      expect((await b.post("/tokens", { name: "by-header" }, { "x-csrf-token": csrf, "hx-request": "true" })).status).toBe(200);
      expect(await tokenCount()).toBe(2);
    });

    test("another session's token does not fit this session", async () => {
      const other = new Browser(app);
      await other.register("op@example.com");
      const foreign = await other.csrf();
      expect((await b.post("/tokens", { name: "x", _csrf: foreign })).status).toBe(403);
      expect(await tokenCount()).toBe(2);
    });

    test("the JSON API does not accept the session cookie alone", async () => {
      const reply = await app.handle(
        new Request("http://localhost/api/v1/tokens", {
          method: "POST",
          headers: { cookie: b.cookieHeader(), "content-type": "application/json", origin: "https://evil.example" },
          body: JSON.stringify({ name: "x" }),
        }),
      );
      expect(reply.status).toBe(401);
      expect(await tokenCount()).toBe(2);
    });
  });

  describe(`[${backend}] §9 REGISTRATION=closed and PUBLIC_URL https`, () => {
    let app: WebApp;
    beforeAll(async () => {
      app = await webApp(backend, { registration: "closed", publicUrl: "https://notify.example.com" });
    });
    afterAll(() => app.close());

    test("the form is hidden and the POST refused: no account is made", async () => {
      const b = new Browser(app);
      const page = await b.get("/register");
      expect(page.text).not.toContain('action="/register"');
      expect(page.text).toContain("Registration is closed");
      const reply = await b.register("someone@example.com");
      expect(reply.status).toBe(403);
      expect(b.cookies.has("nst_session")).toBe(false);
      expect(await new UserService(app.database, app.clock).count()).toBe(0);
    });

    test("with an https PUBLIC_URL the session cookie is Secure, and that origin passes the check", async () => {
      const users = new UserService(app.database, app.clock);
      await users.register("boss@example.com", password);
      const b = new Browser(app);
      const reply = await b.post("/login", { email: "boss@example.com", password }, { origin: "https://notify.example.com" });
      expect(reply.status).toBe(303);
      expect(reply.headers.getSetCookie().find((c) => c.startsWith("nst_session="))).toContain("; Secure");
    });
  });
}
