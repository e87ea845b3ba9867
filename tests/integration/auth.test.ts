/** SPEC §8 authentication: API tokens, and a bearer token on every API and compatibility route. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { sha256Hex } from "../../src/auth/crypto";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { expectProblem } from "./expect-problem";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

const publicPaths = new Set(["/healthz", "/readyz", "/metrics"]);
const isPublic = (path: string) =>
  publicPaths.has(path) || path.startsWith("/docs") || path.startsWith("/static") || path.startsWith("/auth/");

/** Every route the OpenAPI document lists, with `{id}` filled in. */
async function documentedRoutes(t: TestApp): Promise<{ method: string; path: string }[]> {
  const spec = await t.request("GET", "/docs/json", undefined, {});
  expect(spec.status).toBe(200);
  const routes: { method: string; path: string }[] = [];
  for (const [path, operations] of Object.entries<Record<string, unknown>>(spec.body.paths)) {
    for (const method of Object.keys(operations)) {
      routes.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, "1") });
    }
  }
  return routes;
}

for (const backend of backends()) {
  describe(`[${backend}] §8 API tokens`, () => {
    let t: TestApp;
    let secret: string;
    let tokenId: number;
    beforeAll(async () => {
      t = await testApp(backend);
    });
    afterAll(() => t.close());

    test("POST /api/v1/tokens answers 201 with the secret, once", async () => {
      const r = await t.request("POST", "/api/v1/tokens", { name: "crm-sync" });
      expect(r.status, r.text).toBe(201);
      expect(Object.keys(r.body)).toEqual(expect.arrayContaining(["id", "name", "token", "created_at"]));
      expect(Number.isInteger(r.body.id)).toBe(true);
      expect(r.body.name).toBe("crm-sync");
      expect(r.body.created_at).toBe("2026-12-01T00:00:00.000Z");
      expect(typeof r.body.token).toBe("string");
      expect(r.body.token.length).toBeGreaterThanOrEqual(32);
      expect(r.headers.get("location")).toBe(`/api/v1/tokens/${r.body.id}`);
      // The secret must not be kept by a cache between the client and the service.
      expect(r.headers.get("cache-control")).toBe("no-store");
      secret = r.body.token;
      tokenId = r.body.id;
    });

    test("the token authenticates API requests, with the role of its creator (admin key → admin)", async () => {
      const bearer = { authorization: `Bearer ${secret}` };
      const created = await t.request("POST", "/api/v1/clients", { phone_number: 9101459028 }, bearer);
      expect(created.status).toBe(201);
      expect((await t.request("GET", "/api/v1/clients", undefined, bearer)).status).toBe(200);
      const listed = await t.request("GET", "/api/v1/tokens", undefined, bearer);
      expect(listed.body.items.find((x: { id: number }) => x.id === tokenId).role).toBe("admin");
    });

    test("last_used_at records the token's use, to the minute", async () => {
      const bearer = { authorization: `Bearer ${secret}` };
      const usedAt = async () =>
        (await t.request("GET", "/api/v1/tokens")).body.items.find((x: { id: number }) => x.id === tokenId).last_used_at;
      t.clock.set("2026-12-01T00:05:00Z");
      expect((await t.request("GET", "/api/v1/clients", undefined, bearer)).status).toBe(200);
      expect(await usedAt()).toBe("2026-12-01T00:05:00.000Z");
      t.clock.set("2026-12-01T00:05:30Z"); // within the minute: not written again
      expect((await t.request("GET", "/api/v1/clients", undefined, bearer)).status).toBe(200);
      expect(await usedAt()).toBe("2026-12-01T00:05:00.000Z");
      t.clock.set("2026-12-01T00:07:00Z");
      expect((await t.request("GET", "/api/v1/clients", undefined, bearer)).status).toBe(200);
      expect(await usedAt()).toBe("2026-12-01T00:07:00.000Z");
      // A request with the admin key is not a use of this token.
      t.clock.set("2026-12-01T00:09:00Z");
      expect((await t.request("GET", "/api/v1/clients")).status).toBe(200);
      expect(await usedAt()).toBe("2026-12-01T00:07:00.000Z");
      t.clock.set("2026-12-01T00:00:00Z");
    });

    test("a failed last_used_at write never fails the request; it is logged and made on the next use", async () => {
      const bearer = { authorization: `Bearer ${secret}` };
      await t.database.rows(sql.raw(`create function refuse_last_used() returns trigger language plpgsql as $$
        begin raise exception 'last_used_at refused by the test'; end $$`));
      await t.database.rows(sql.raw(`create trigger refuse_last_used before update of last_used_at on api_tokens
        for each row execute function refuse_last_used()`));
      try {
        t.clock.set("2026-12-01T00:20:00Z");
        const r = await t.request("GET", "/api/v1/clients", undefined, bearer);
        expect(r.status, r.text).toBe(200);
        expect(t.logger.lines.some((l) => l.msg === "recording a token's use failed" && l.token_id === tokenId)).toBe(true);
        expect(JSON.stringify(t.logger.lines)).not.toContain(secret);
      } finally {
        await t.database.rows(sql.raw("drop trigger refuse_last_used on api_tokens"));
        await t.database.rows(sql.raw("drop function refuse_last_used()"));
      }
      // Within the same minute, but the failed write is not counted as made.
      t.clock.set("2026-12-01T00:20:10Z");
      expect((await t.request("GET", "/api/v1/clients", undefined, bearer)).status).toBe(200);
      const [row] = await t.database.rows<{ at: string }>(
        sql`select to_char(last_used_at at time zone 'UTC', 'HH24:MI:SS') as at from api_tokens where id = ${tokenId}`,
      );
      expect(row!.at).toBe("00:20:10");
      t.clock.set("2026-12-01T00:00:00Z");
    });

    test("the database keeps only the SHA-256 of the secret", async () => {
      const rows = await t.database.rows<{ token_hash: string; row: string }>(
        sql`select token_hash, t::text as row from api_tokens t where id = ${tokenId}`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.token_hash).toBe(await sha256Hex(secret));
      expect(rows[0]!.row).not.toContain(secret);
    });

    test("the list never shows the secret or its hash", async () => {
      const r = await t.request("GET", "/api/v1/tokens");
      expect(r.status).toBe(200);
      const mine = r.body.items.find((x: { id: number }) => x.id === tokenId);
      expect(mine).toMatchObject({ id: tokenId, name: "crm-sync", revoked_at: null });
      expect(mine).not.toHaveProperty("token");
      expect(mine).not.toHaveProperty("token_hash");
      expect(r.text).not.toContain(secret);
      expect(r.text).not.toContain(await sha256Hex(secret));
    });

    test("a token name is required, non-blank and at most 100 characters", async () => {
      expectProblem(await t.request("POST", "/api/v1/tokens", {}), 422, "name");
      expectProblem(await t.request("POST", "/api/v1/tokens", { name: "  " }), 422, "name");
      expectProblem(await t.request("POST", "/api/v1/tokens", { name: "x".repeat(101) }), 422, "name");
      expectProblem(await t.request("POST", "/api/v1/tokens", { name: 5 }), 422, "name");
    });

    test("a revoked token → 401; revoking again or an unknown id → 404", async () => {
      const bearer = { authorization: `Bearer ${secret}` };
      const other = await t.request("POST", "/api/v1/tokens", { name: "other" });
      const revoke = await t.request("DELETE", `/api/v1/tokens/${tokenId}`);
      expect(revoke.status).toBe(204);
      const refused = await t.request("GET", "/api/v1/clients", undefined, bearer);
      expectProblem(refused, 401, "authorization");
      expect(refused.headers.get("www-authenticate")).toStartWith("Bearer");
      expectProblem(await t.request("POST", "/api/v1/clients", { phone_number: 9101459029 }, bearer), 401, "authorization");
      expectProblem(await t.request("DELETE", `/api/v1/tokens/${tokenId}`), 404, "id");
      expectProblem(await t.request("DELETE", "/api/v1/tokens/999999"), 404, "id");
      expectProblem(await t.request("DELETE", "/api/v1/tokens/abc"), 422, "id");
      const listed = await t.request("GET", "/api/v1/tokens");
      expect(listed.body.items.find((x: { id: number }) => x.id === tokenId).revoked_at).toBe("2026-12-01T00:00:00.000Z");
      // Revoking one token leaves the others working.
      expect((await t.request("GET", "/api/v1/clients", undefined, { authorization: `Bearer ${other.body.token}` })).status).toBe(200);
    });

    test("an unknown token, a malformed header or no header → 401", async () => {
      const headerSets: Record<string, string>[] = [
        {},
        { authorization: "Bearer nst_unknown-token-0000000000000000000000000" },
        { authorization: "Bearer not-even-a-token" },
        { authorization: `Bearer ${"x".repeat(10_000)}` },
        { authorization: "Bearer" },
        { authorization: "Basic dXNlcjpwYXNz" },
        { authorization: "test-admin-key-0123456789" },
      ];
      for (const headers of headerSets) {
        expectProblem(await t.request("GET", "/api/v1/clients", undefined, headers), 401, "authorization");
      }
    });

    test("the secret never appears in a log line", () => {
      expect(secret).toBeString();
      expect(JSON.stringify(t.logger.lines)).not.toContain(secret);
    });
  });

  describe(`[${backend}] §8 every API and compatibility route needs a bearer token`, () => {
    let t: TestApp;
    let routes: { method: string; path: string }[];
    beforeAll(async () => {
      t = await testApp(backend);
      routes = (await documentedRoutes(t)).filter((r) => !isPublic(r.path.replace(/\/1(\/|$)/g, "/{id}$1")));
    });
    afterAll(() => t.close());

    test("the OpenAPI document lists every route of §8, new and compatibility", () => {
      const listed = new Set(routes.map((r) => `${r.method} ${r.path.replace(/\/$/, "")}`));
      for (const route of [
        "GET /api/v1/clients",
        "POST /api/v1/clients",
        "GET /api/v1/clients/1",
        "PATCH /api/v1/clients/1",
        "DELETE /api/v1/clients/1",
        "GET /api/v1/mailings",
        "POST /api/v1/mailings",
        "GET /api/v1/mailings/1",
        "PATCH /api/v1/mailings/1",
        "DELETE /api/v1/mailings/1",
        "POST /api/v1/mailings/1/pause",
        "POST /api/v1/mailings/1/resume",
        "POST /api/v1/mailings/1/cancel",
        "GET /api/v1/mailings/1/messages",
        "GET /api/v1/stats",
        "GET /api/v1/stats/1",
        "GET /api/v1/tokens",
        "POST /api/v1/tokens",
        "DELETE /api/v1/tokens/1",
        "POST /clients/create",
        "PATCH /clients/update/1",
        "DELETE /clients/delete/1",
        "POST /mailing/create",
        "PATCH /mailing/update/1",
        "DELETE /mailing/delete/1",
        "GET /stats",
        "GET /stats/1",
      ]) {
        expect(listed.has(route), route).toBe(true);
      }
    });

    test("without credentials every one answers 401 with a problem document, whatever the body", async () => {
      expect(routes.length).toBeGreaterThanOrEqual(27);
      for (const { method, path } of routes) {
        for (const path2 of path.endsWith("/") || path.startsWith("/api/") ? [path] : [path, `${path}/`]) {
          const body = method === "GET" || method === "DELETE" ? undefined : { bogus: true };
          const r = await t.request(method, path2, body, {});
          expectProblem(r, 401, "authorization");
        }
      }
    });

    test("with an unknown token every one answers 401", async () => {
      for (const { method, path } of routes) {
        const r = await t.request(method, path, method === "GET" ? undefined : {}, { authorization: "Bearer nst_nope" });
        expectProblem(r, 401, "authorization");
      }
    });

    test("with the admin key none of them answers 401", async () => {
      for (const { method, path } of routes) {
        const r = await t.request(method, path, method === "GET" || method === "DELETE" ? undefined : {});
        expect(r.status, `${method} ${path}`).not.toBe(401);
        expect(r.status, `${method} ${path}`).toBeLessThan(500);
      }
    });
  });
}
