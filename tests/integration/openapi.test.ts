/** SPEC §8 OpenAPI at /docs/json and a browsable /docs that works offline; SPEC §10 health checks. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

type Operation = {
  deprecated?: boolean;
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown>; example?: unknown; examples?: unknown }> };
};

for (const backend of backends()) {
  describe(`[${backend}] §8 OpenAPI`, () => {
    let t: TestApp;
    let spec: { openapi: string; paths: Record<string, Record<string, Operation>>; components: any; security: any };
    beforeAll(async () => {
      t = await testApp(backend);
      const r = await t.request("GET", "/docs/json", undefined, {});
      expect(r.status).toBe(200);
      spec = r.body;
    });
    afterAll(() => t.close());

    const operations = () =>
      Object.entries(spec.paths).flatMap(([path, ops]) =>
        Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
      );

    test("/docs/json is an OpenAPI 3 document, readable without credentials", () => {
      expect(spec.openapi).toMatch(/^3\.\d+\.\d+$/);
      expect(Object.keys(spec.paths).length).toBeGreaterThan(20);
    });

    test("the bearer security scheme is declared and required by default", () => {
      expect(spec.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer" });
      expect(spec.security).toContainEqual({ bearer: [] });
    });

    test("every request body is JSON with a schema and an example", () => {
      const withBody = operations().filter((o) => o.op.requestBody);
      expect(withBody.map((o) => `${o.method} ${o.path}`)).toEqual(
        expect.arrayContaining(["POST /api/v1/clients/", "PATCH /api/v1/clients/{id}", "POST /api/v1/mailings/", "PATCH /api/v1/mailings/{id}", "POST /api/v1/tokens/", "POST /clients/create", "POST /mailing/create/"]),
      );
      for (const { method, path, op } of withBody) {
        const where = `${method} ${path}`;
        if (path === "/api/v1/clients/import") {
          // The one streamed body: CSV, documented with a CSV example.
          const csv = op.requestBody!.content?.["text/csv"];
          expect(typeof csv?.example, where).toBe("string");
          expect(String(csv!.example).split("\n")[0], where).toContain("phone_number");
          continue;
        }
        const media = op.requestBody!.content?.["application/json"];
        expect(media, where).toBeDefined();
        expect(media!.schema, where).toBeDefined();
        const examples = (media!.schema!.examples as unknown[] | undefined) ?? (media!.example !== undefined ? [media!.example] : []);
        expect(examples.length, where).toBeGreaterThan(0);
        expect(typeof examples[0], where).toBe("object");
      }
    });

    test("the examples are bodies the API accepts", async () => {
      const body = (path: string) => (spec.paths[path]!.post!.requestBody!.content!["application/json"]!.schema!.examples as unknown[])[0];
      const client = await t.request("POST", "/api/v1/clients", body("/api/v1/clients/"));
      expect(client.status, client.text).toBe(201);
      const mailing = await t.request("POST", "/api/v1/mailings", body("/api/v1/mailings/"));
      expect(mailing.status, mailing.text).toBe(201);
      const token = await t.request("POST", "/api/v1/tokens", body("/api/v1/tokens/"));
      expect(token.status, token.text).toBe(201);
    });

    test("compatibility routes, and only they, are deprecated", () => {
      const compat = /^\/(clients\/(create|update|delete)|mailing\/|stats)/;
      const compatOps = operations().filter((o) => compat.test(o.path));
      expect(compatOps.length).toBe(16); // 8 routes, with and without the trailing slash
      for (const { method, path, op } of operations()) {
        expect(op.deprecated === true, `${method} ${path}`).toBe(compat.test(path));
      }
    });

    test("each compatibility route documents the same request and responses as its v1 route (one definition)", () => {
      const pairs: [string, string, string][] = [
        ["post", "/clients/create", "/api/v1/clients/"],
        ["patch", "/clients/update/{id}", "/api/v1/clients/{id}"],
        ["delete", "/clients/delete/{id}", "/api/v1/clients/{id}"],
        ["post", "/mailing/create", "/api/v1/mailings/"],
        ["patch", "/mailing/update/{id}", "/api/v1/mailings/{id}"],
        ["delete", "/mailing/delete/{id}", "/api/v1/mailings/{id}"],
        ["get", "/stats", "/api/v1/stats"],
        ["get", "/stats/{id}", "/api/v1/stats/{id}"],
      ];
      const shape = (op: Operation & Record<string, unknown>) => JSON.stringify({ requestBody: op.requestBody, responses: op.responses, parameters: op.parameters });
      for (const [method, old, current] of pairs) {
        const v1 = spec.paths[current]?.[method] ?? spec.paths[current.replace(/\/$/, "")]?.[method];
        expect(v1, `${method} ${current}`).toBeDefined();
        for (const path of [old, `${old}/`]) {
          const compat = spec.paths[path]?.[method];
          expect(compat, `${method} ${path}`).toBeDefined();
          expect(shape(compat as never), `${method} ${path}`).toBe(shape(v1 as never));
        }
      }
    });

    test("README has a curl example for every documented route", () => {
      const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
      const curls = readme.split("\n").filter((line) => line.trimStart().startsWith("curl "));
      for (const { method, path } of operations()) {
        if (path.startsWith("/docs")) continue;
        // any id will do: the examples use the ids a fresh database gives them (README runs in order)
        const bare = path.replace(/(.)\/$/, "$1").replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{(id|phone)\\?\}/g, "\\d+");
        const pattern = new RegExp(`^${bare}$`);
        const hit = curls.some((line) => {
          const url = /\$API(\/[^\s"?]*)/.exec(line)?.[1]?.replace(/(.)\/$/, "$1");
          const verb = /-X (\w+)/.exec(line)?.[1] ?? "GET";
          return url !== undefined && pattern.test(url) && verb === method;
        });
        expect(hit, `${method} ${path}`).toBe(true);
      }
    });

    test("the time-zone rule is documented on the mailing schema", () => {
      const schema = JSON.stringify(spec.paths["/api/v1/mailings/"]!.post!.requestBody);
      expect(schema).toContain("own time zone");
      expect(schema).toMatch(/Z or offset is accepted and ignored/);
    });

    test("/docs is HTML that loads only local assets, and those assets answer 200", async () => {
      const page = await t.request("GET", "/docs", undefined, {});
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toStartWith("text/html");
      const refs = [...page.text.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)=["']([^"']+)["']/g)].map((m) => m[1]!);
      expect(refs.length).toBeGreaterThanOrEqual(2);
      expect(page.text).not.toMatch(/(?:src|href)=["'](?:https?:)?\/\//);
      for (const ref of refs) {
        expect(ref.startsWith("/"), ref).toBe(true);
        const asset = await t.request("GET", ref, undefined, {});
        expect(asset.status, ref).toBe(200);
        expect(asset.text.length, ref).toBeGreaterThan(1000);
      }
      expect(refs.some((r) => r.endsWith(".js"))).toBe(true);
      expect(refs.some((r) => r.endsWith(".css"))).toBe(true);
    });

    test("the page at /docs and at /docs/ loads the spec from a URL that answers with it", async () => {
      for (const page of ["/docs", "/docs/"]) {
        const html = (await t.request("GET", page, undefined, {})).text;
        const url = /SwaggerUIBundle\((\{.*?\})\)/s.exec(html)?.[1];
        expect(url, page).toBeDefined();
        const spec = new URL(JSON.parse(url!).url, `http://localhost${page}`).pathname;
        const r = await t.request("GET", spec, undefined, {});
        expect(r.status, `${page} → ${spec}`).toBe(200);
        expect(r.body.openapi, `${page} → ${spec}`).toStartWith("3.");
      }
    });

    test("the docs asset route serves nothing but its two files", async () => {
      for (const path of ["/docs/assets/package.json", "/docs/assets/..%2F..%2Fpackage.json", "/docs/assets/index.html"]) {
        expect((await t.request("GET", path, undefined, {})).status).toBe(404);
      }
    });
  });

  describe(`[${backend}] §10 health`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend);
    });
    afterAll(() => t.close());

    test("/healthz answers 200 without credentials", async () => {
      const r = await t.request("GET", "/healthz", undefined, {});
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ status: "ok" });
    });

    test("/readyz answers 200 when the database is reachable and migrated", async () => {
      const r = await t.request("GET", "/readyz", undefined, {});
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ status: "ready", database: backend });
    });

    test("/readyz answers 503 when a migration is missing", async () => {
      const [last] = await t.database.rows<{ id: number }>(sql`select max(id)::int as id from drizzle.__drizzle_migrations`);
      const saved = await t.database.rows(sql`select * from drizzle.__drizzle_migrations where id = ${last!.id}`);
      await t.database.rows(sql`delete from drizzle.__drizzle_migrations where id = ${last!.id}`);
      try {
        const r = await t.request("GET", "/readyz", undefined, {});
        expect(r.status).toBe(503);
        expect(r.body.status).toBe("migrations pending");
      } finally {
        const row = saved[0] as { id: number; hash: string; created_at: string | number };
        await t.database.rows(
          sql`insert into drizzle.__drizzle_migrations (id, hash, created_at) values (${row.id}, ${row.hash}, ${row.created_at})`,
        );
      }
      expect((await t.request("GET", "/readyz", undefined, {})).status).toBe(200);
    });

    test("/readyz answers 503 when the database is gone", async () => {
      const gone = await testApp(backend);
      try {
        await gone.database.close();
        const r = await gone.request("GET", "/readyz", undefined, {});
        expect(r.status).toBe(503);
        expect(r.body.status).toBe("database unreachable");
        const health = await gone.request("GET", "/healthz", undefined, {});
        expect(health.status).toBe(200);
      } finally {
        await gone.close().catch(() => {});
      }
    });
  });
}
