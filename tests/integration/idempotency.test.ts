/** Issue 15 item 6: Idempotency-Key on POST /api/v1/clients, /mailings and the CSV import. */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { auth, type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { expectProblem } from "./expect-problem";

setDefaultTimeout(60_000);

const day = "2026-12-01";

for (const backend of backends()) {
  describe(`[${backend}] Idempotency-Key`, () => {
    let t: TestApp;
    afterEach(() => t?.close());
    const json = (key: string) => ({ ...auth, "content-type": "application/json", "idempotency-key": key });

    test("the same key and body return the first answer and create nothing; another body is a 422", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      const body = JSON.stringify({ phone_number: "79101234567", tag: "a" });
      const first = await t.request("POST", "/api/v1/clients", body, json("k-1"));
      expect(first.status).toBe(201);
      const again = await t.request("POST", "/api/v1/clients", body, json("k-1"));
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      const other = await t.request("POST", "/api/v1/clients", JSON.stringify({ phone_number: "79101234568" }), json("k-1"));
      expectProblem(other, 422, ["Idempotency-Key"]);
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      // Without a key, the same body is a new request (here: a duplicate phone).
      expect((await t.request("POST", "/api/v1/clients", body, { ...auth, "content-type": "application/json" })).status).toBe(409);
    });

    test("mailings and the import; a refused request leaves the key free; keys expire after 24 h", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      const mailing = JSON.stringify({ text: "hi", start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      const m1 = await t.request("POST", "/api/v1/mailings", mailing, json("m"));
      const m2 = await t.request("POST", "/api/v1/mailings", mailing, json("m"));
      expect([m1.status, m2.status]).toEqual([201, 201]);
      expect(m2.body.id).toBe(m1.body.id);
      expect((await t.request("GET", "/api/v1/mailings")).body.items).toHaveLength(1);

      const csv = "phone_number\n79101234567\n79101234568\n";
      const headers = { ...auth, "content-type": "text/csv", "idempotency-key": "import-1" };
      const i1 = await t.request("POST", "/api/v1/clients/import", csv, headers);
      const i2 = await t.request("POST", "/api/v1/clients/import", csv, headers);
      expect(i1.body).toMatchObject({ created: 2 });
      expect(i2.body).toEqual(i1.body);

      const bad = JSON.stringify({ phone_number: "12" });
      expect((await t.request("POST", "/api/v1/clients", bad, json("c"))).status).toBe(422);
      const fixed = await t.request("POST", "/api/v1/clients", bad, json("c"));
      expect(fixed.status).toBe(422);
      expect(fixed.headers.get("idempotent-replayed")).toBeNull();

      // After 24 h the key is forgotten: the same request runs again (here: the phone exists by now).
      const late = JSON.stringify({ phone_number: "79101234599" });
      expect((await t.request("POST", "/api/v1/clients", late, json("late"))).status).toBe(201);
      t.clock.advance(24 * 3600 - 1);
      expect((await t.request("POST", "/api/v1/clients", late, json("late"))).status).toBe(201);
      t.clock.advance(2);
      expect((await t.request("POST", "/api/v1/clients", late, json("late"))).status).toBe(409);
    });
  });
}
