/**
 * SPEC §10 logs: a failed statement is logged with its cause (the SQLSTATE and the driver's
 * message) and a stack, never with the statement's SQL text or its parameters (a token's SHA-256).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { sha256Hex } from "../../src/auth/crypto";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §10 logs of a failed statement`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend);
    });
    afterAll(() => t.close());

    test("a token lookup that fails answers 500 and logs the SQLSTATE, never the token's hash or the SQL", async () => {
      const created = await t.request("POST", "/api/v1/tokens", { name: "ci" });
      expect(created.status, created.text).toBe(201);
      const secret: string = created.body.token;
      const hash = await sha256Hex(secret);
      // The lookup now fails with 42P01 (undefined_table), its parameter being the token's hash.
      await t.database.rows(sql.raw("alter table api_tokens rename to api_tokens_away"));
      try {
        const r = await t.request("GET", "/api/v1/clients", undefined, { authorization: `Bearer ${secret}` });
        expect(r.status, r.text).toBe(500);
        const line = t.logger.lines.find((l) => l.msg === "unhandled error");
        expect(line).toMatchObject({ route: "/api/v1/clients", request_id: expect.any(String) });
        const text = JSON.stringify(line);
        expect(text).not.toContain(hash);
        expect(text).not.toContain(secret);
        expect(text).not.toMatch(/select|api_tokens_away|params/i);
        const error = line!.error as { stack?: string; cause?: { code?: string; message?: string } };
        expect(error.cause?.code).toBe("42P01");
        expect(error.cause?.message).toContain("api_tokens");
        expect(error.stack).toContain("    at ");
      } finally {
        await t.database.rows(sql.raw("alter table api_tokens_away rename to api_tokens"));
      }
    });
  });
}
