import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { backends } from "../support/db";
import { type TestApp, testApp } from "../support/app";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §8 smoke`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await testApp(backend);
    });
    afterAll(() => t.close());

    test("original client body creates client 79101459028 with operator code 910", async () => {
      const r = await t.request("POST", "/api/v1/clients", { phone_number: 9101459028, tag: "tag", timezone: "Europe/Moscow" });
      expect(r.status).toBe(201);
      expect(r.body.phone_number).toBe("79101459028");
      expect(r.body.operator_code).toBe("910");
      expect(r.headers.get("location")).toBe(`/api/v1/clients/${r.body.id}`);
    });
  });
}
