/** SPEC §9 admin area (issue 12): users, roles, disabling, every token, and the audit log (UI and API). */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { UserAdmin } from "../../src/auth/users";
import postgres from "postgres";
import { FixedClock } from "../../src/clock";
import { backends, freshDatabase } from "../support/db";
import { waitFor } from "../support/wait";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const adminKey = "admin-key-for-admin-tests";

for (const backend of backends()) {
  describe(`[${backend}] §9 admin area`, () => {
    let app: WebApp;
    let boss: Browser;
    let op: Browser;
    const api = async (method: string, path: string, token: string, body?: unknown) => {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      const response = await app.handle(new Request(`http://localhost${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    };
    const userId = async (email: string) => (await app.database.rows<{ id: number }>(sql`select id from users where email = ${email}`))[0]!.id;
    /** A token made through the tokens page by this browser; its secret. */
    const tokenOf = async (b: Browser, name: string) => {
      const reply = await b.post("/tokens", { name, _csrf: await b.csrf() });
      return /id="new-secret"[^>]*value="([^"]+)"/.exec(reply.text)![1]!;
    };
    const events = (kind: string) => app.database.rows<{ actor_user_id: number | null; target: string | null; detail: Record<string, unknown> }>(sql`select actor_user_id, target, detail from audit_log where kind = ${kind} order by id`);

    beforeAll(async () => {
      app = await webApp(backend, { adminApiKey: adminKey });
      boss = new Browser(app);
      await boss.register("boss@example.com");
      op = new Browser(app);
      await op.register("op@example.com");
    });
    afterAll(() => app.close());

    test("operators get 403 on every admin page and write, and on GET /api/v1/audit", async () => {
      for (const path of ["/admin", "/admin/tokens", "/admin/audit"]) expect((await op.get(path)).status).toBe(403);
      const csrf = await op.csrf();
      expect((await op.post(`/admin/users/${await userId("op@example.com")}/role`, { role: "admin", _csrf: csrf })).status).toBe(403);
      expect((await app.database.rows<{ role: string }>(sql`select role from users where email = 'op@example.com'`))[0]!.role).toBe("operator");
      const token = await tokenOf(op, "op-token");
      const reply = await api("GET", "/api/v1/audit", token);
      expect(reply.status).toBe(403);
      expect(reply.body.errors[0].field).toBe("authorization");
    });

    test("the users page lists accounts; an admin write without the CSRF token is refused", async () => {
      const page = await boss.get("/admin");
      expect(page.status).toBe(200);
      expect(page.text).toContain("op@example.com");
      expect(page.text).toMatch(/<label for="role-\d+"/);
      const refused = await boss.post(`/admin/users/${await userId("op@example.com")}/disable`, {});
      expect(refused.status).toBe(403);
      expect((await app.database.rows<{ disabled: boolean }>(sql`select disabled from users where email = 'op@example.com'`))[0]!.disabled).toBe(false);
    });

    test("disabling a user stops their session and API tokens at once; enabling brings the tokens back", async () => {
      const victim = new Browser(app);
      await victim.register("victim@example.com");
      const token = await tokenOf(victim, "victim-token");
      expect((await api("GET", "/api/v1/clients", token)).status).toBe(200);
      const id = await userId("victim@example.com");
      const done = await boss.post(`/admin/users/${id}/disable`, { _csrf: await boss.csrf("/admin") });
      expect(done.status).toBe(200);
      expect(done.text).toContain("victim@example.com is disabled");
      expect((await victim.get("/")).status).toBe(303);
      expect((await api("GET", "/api/v1/clients", token)).status).toBe(401);
      expect((await events("user.disabled")).at(-1)).toMatchObject({ actor_user_id: await userId("boss@example.com"), target: `user:${id}` });
      await boss.post(`/admin/users/${id}/enable`, { _csrf: await boss.csrf("/admin") });
      expect((await api("GET", "/api/v1/clients", token)).status).toBe(200);
      expect((await events("user.enabled")).length).toBe(1);
    });

    test("a role change is recorded, and a demoted admin's tokens act as an operator's at once", async () => {
      const second = new Browser(app);
      await second.register("second@example.com");
      const id = await userId("second@example.com");
      await boss.post(`/admin/users/${id}/role`, { role: "admin", _csrf: await boss.csrf("/admin") });
      const token = await tokenOf(second, "second-admin-token");
      expect((await api("GET", "/api/v1/audit", token)).status).toBe(200);
      const demoted = await boss.post(`/admin/users/${id}/role`, { role: "operator", _csrf: await boss.csrf("/admin") });
      expect(demoted.text).toContain("second@example.com is now operator");
      expect((await api("GET", "/api/v1/audit", token)).status).toBe(403);
      expect((await events("user.role")).map((e) => e.detail.role)).toEqual(["admin", "operator"]);
    });

    test("the last active admin can be neither demoted nor disabled", async () => {
      const id = await userId("boss@example.com");
      const demote = await boss.post(`/admin/users/${id}/role`, { role: "operator", _csrf: await boss.csrf("/admin") });
      expect(demote.status).toBe(409);
      expect(demote.text).toContain("The last active administrator");
      const disable = await boss.post(`/admin/users/${id}/disable`, { _csrf: await boss.csrf("/admin") });
      expect(disable.status).toBe(409);
      expect((await app.database.rows<{ role: string; disabled: boolean }>(sql`select role, disabled from users where id = ${id}`))[0]).toEqual({ role: "admin", disabled: false });
    });

    test("the tokens page lists every user's tokens with owner and last use, and revokes", async () => {
      const page = await boss.get("/admin/tokens");
      expect(page.text).toContain("victim-token");
      expect(page.text).toContain("victim@example.com");
      const [row] = await app.database.rows<{ id: number }>(sql`select id from api_tokens where name = 'victim-token'`);
      const revoked = await boss.post(`/admin/tokens/${row!.id}/revoke`, { _csrf: await boss.csrf("/admin") });
      expect(revoked.status).toBe(200);
      expect((await app.database.rows<{ revoked_at: string | null }>(sql`select revoked_at from api_tokens where id = ${row!.id}`))[0]!.revoked_at).not.toBeNull();
      expect((await events("token.revoked")).at(-1)).toMatchObject({ actor_user_id: await userId("boss@example.com"), target: `token:${row!.id}` });
    });

    test("sign-ins, failed sign-ins, token creation and mailing deletes and cancels (API and UI) are recorded", async () => {
      const someone = new Browser(app);
      expect((await someone.post("/login", { email: "boss@example.com", password: "wrong password!" })).status).toBe(401);
      expect((await someone.post("/login", { email: "boss@example.com", password: "correct horse battery" })).status).toBe(303);
      expect((await events("signin.failed")).at(-1)).toMatchObject({ actor_user_id: null, target: "boss@example.com" });
      expect((await events("signin.password")).at(-1)).toMatchObject({ actor_user_id: await userId("boss@example.com") });
      expect((await events("token.created")).map((e) => e.detail.name)).toContain("victim-token");

      const mailing = { text: "hi", start_time: "2026-12-10T09:00:00", end_time: "2026-12-11T09:00:00" };
      const viaApi = await api("POST", "/api/v1/mailings", adminKey, mailing);
      expect((await api("POST", `/api/v1/mailings/${viaApi.body.id}/cancel`, adminKey)).status).toBe(200);
      expect((await api("DELETE", `/api/v1/mailings/${viaApi.body.id}`, adminKey)).status).toBe(204);
      const viaUi = await api("POST", "/api/v1/mailings", adminKey, mailing);
      const csrf = await boss.csrf("/mailings");
      expect((await boss.post(`/mailings/${viaUi.body.id}/cancel`, { _csrf: csrf })).status).toBe(303);
      expect((await boss.post(`/mailings/${viaUi.body.id}/delete`, { _csrf: csrf })).status).toBe(303);
      const bossId = await userId("boss@example.com");
      expect((await events("mailing.cancelled")).map((e) => [e.actor_user_id, e.target])).toEqual([[null, `mailing:${viaApi.body.id}`], [bossId, `mailing:${viaUi.body.id}`]]);
      expect((await events("mailing.deleted")).map((e) => [e.actor_user_id, e.target])).toEqual([[null, `mailing:${viaApi.body.id}`], [bossId, `mailing:${viaUi.body.id}`]]);
    });

    test("GET /api/v1/audit: newest first, paginated, filtered by user and kind; a bad filter is a 422 naming it", async () => {
      const all = await api("GET", "/api/v1/audit?limit=1000", adminKey);
      expect(all.status).toBe(200);
      const ids = all.body.items.map((e: { id: number }) => e.id);
      expect(ids).toEqual([...ids].sort((x: number, y: number) => y - x));
      const first = await api("GET", "/api/v1/audit?limit=2", adminKey);
      expect(first.body.items.length).toBe(2);
      const second = await api("GET", `/api/v1/audit?limit=2&cursor=${first.body.next_cursor}`, adminKey);
      expect(second.body.items[0].id).toBe(ids[2]);
      const kind = await api("GET", "/api/v1/audit?kind=user.role", adminKey);
      expect(kind.body.items.length).toBeGreaterThan(0);
      expect(kind.body.items.every((e: { kind: string }) => e.kind === "user.role")).toBe(true);
      const bossId = await userId("boss@example.com");
      const byUser = await api("GET", `/api/v1/audit?user_id=${bossId}`, adminKey);
      expect(byUser.body.items.every((e: { actor_user_id: number }) => e.actor_user_id === bossId)).toBe(true);
      const bad = await api("GET", "/api/v1/audit?kind=nonsense", adminKey);
      expect(bad.status).toBe(422);
      expect(bad.body.errors[0].field).toBe("kind");
      expect((await api("GET", "/api/v1/audit?user_id=x", adminKey)).body.errors[0].field).toBe("user_id");
    });

    test("the main navigation marks its section current on sub-pages: Admin on /admin/tokens and /admin/audit", async () => {
      const current = (html: string) => [...html.matchAll(/<a href="([^"]+)" aria-current="(page|true)">/g)].map((m) => `${m[1]} ${m[2]}`);
      expect(current((await boss.get("/admin")).text)).toEqual(["/admin page", "/admin page"]);
      expect(current((await boss.get("/admin/tokens")).text)).toEqual(["/admin true", "/admin/tokens page"]);
      expect(current((await boss.get("/admin/audit")).text)).toEqual(["/admin true", "/admin/audit page"]);
      // The dashboard's "/" is current on the dashboard only.
      expect(current((await boss.get("/mailings")).text)).toEqual(["/mailings page", "/mailings page"]);
    });

    test("the audit page filters by user and kind and pages on", async () => {
      const page = await boss.get("/admin/audit?kind=user.role");
      expect(page.status).toBe(200);
      expect(page.text).toContain("role changed");
      expect(page.text).not.toContain("failed sign-in</td>");
      expect(page.text).toMatch(/<label for="audit-kind"/);
    });

    test("the audit log is append-only: the database refuses to change or remove a row", async () => {
      const failure = async (query: ReturnType<typeof sql>) => {
        try {
          await app.database.rows(query);
        } catch (error) {
          // Drizzle wraps the driver's error: the database's message is in the cause.
          return String((error as { cause?: { message?: string } }).cause?.message ?? error);
        }
        return "no error";
      };
      expect(await failure(sql`update audit_log set kind = 'x'`)).toContain("append-only");
      expect(await failure(sql`delete from audit_log`)).toContain("append-only");
      expect(Number((await app.database.rows<{ n: number }>(sql`select count(*)::int as n from audit_log`))[0]!.n)).toBeGreaterThan(0);
    });
  });
}

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §9 the last admin, against a concurrent demotion (needs DATABASE_URL)", () => {
  test("a demotion waits for another one in flight and then refuses to remove the last admin", async () => {
    const { database, url, drop } = await freshDatabase("postgres");
    const other = postgres(url!, { max: 1, onnotice: () => {} });
    try {
      await database.rows(sql`insert into users (email, role) values ('a@example.com', 'admin'), ('b@example.com', 'admin')`);
      const [a, b] = (await database.rows<{ id: number }>(sql`select id from users order by id`)).map((r) => r.id);
      const users = new UserAdmin(database, new FixedClock("2026-12-01T00:00:00Z"));
      // Another process demotes a and has not committed yet.
      const reserved = await other.reserve();
      await reserved`begin`;
      await reserved`update users set role = 'operator' where id = ${a!}`;
      let settled = false;
      const demoteB = users.setRole(b!, "operator").finally(() => void (settled = true));
      // It must wait for a's row lock rather than count a as an admin still (or finish without waiting).
      await waitFor(async () => {
        if (settled) return "finished";
        const [row] = await database.rows<{ n: number }>(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
        return row!.n > 0 ? "waiting" : undefined;
      }, 10_000, "the demotion to wait for the lock or finish");
      await reserved`commit`;
      reserved.release();
      expect(await demoteB).toEqual({ ok: false, reason: "last-admin" });
      const admins = await database.rows<{ id: number }>(sql`select id from users where role = 'admin'`);
      expect(admins.map((r) => r.id)).toEqual([b!]);
    } finally {
      await other.end();
      await drop();
    }
  });
});
