/**
 * SPEC §8 compatibility routes, with and without the trailing slash, using exactly the request bodies
 * of the original service's examples (issue 2, item 6).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { expectProblem } from "./expect-problem";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

// Exactly the bodies of issue 2, item 6.
const originalClient = { phone_number: 9101459028, tag: "tag", timezone: "Europe/Moscow" };
const originalMailing = {
  start_time: "2026-12-01T09:00:00Z",
  end_time: "2026-12-02T09:00:00Z",
  text: "text",
  tags_filter: [],
  codes_filter: [910, 911],
};

for (const backend of backends()) {
  for (const slash of ["", "/"]) {
    describe(`[${backend}] §8 compatibility routes ${slash ? "with" : "without"} the trailing slash`, () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await testApp(backend);
      });
      afterAll(() => t.close());

      test("POST /clients/create creates client 79101459028 with operator code 910, like the new route", async () => {
        const r = await t.request("POST", `/clients/create${slash}`, originalClient);
        expect(r.status, r.text).toBe(201);
        expect(r.body).toMatchObject({ phone_number: "79101459028", operator_code: "910", tag: "tag", timezone: "Europe/Moscow" });
        expect(r.headers.get("location")).toBe(`/api/v1/clients/${r.body.id}`);
        const fresh = await t.request("GET", `/api/v1/clients/${r.body.id}`);
        expect(fresh.body).toEqual(r.body);
        expectProblem(await t.request("POST", `/clients/create${slash}`, originalClient), 409, "phone_number");
        expectProblem(await t.request("POST", `/clients/create${slash}`, { ...originalClient, phone_number: 9101459029, timezone: "Asia/Unknown" }), 422, "timezone");
      });

      test("PATCH /clients/update/{id} changes only the fields given", async () => {
        const id = (await t.request("GET", "/api/v1/clients?q=79101459028")).body.items[0].id;
        const r = await t.request("PATCH", `/clients/update/${id}${slash}`, { tag: "changed" });
        expect(r.status, r.text).toBe(200);
        expect(r.body).toMatchObject({ id, phone_number: "79101459028", tag: "changed", timezone: "Europe/Moscow" });
        expectProblem(await t.request("PATCH", `/clients/update/999999${slash}`, { tag: "x" }), 404, "id");
        expectProblem(await t.request("PATCH", `/clients/update/abc${slash}`, { tag: "x" }), 422, "id");
      });

      test("POST /mailing/create creates a mailing from the original body; the Z does not shift the wall time", async () => {
        const r = await t.request("POST", `/mailing/create${slash}`, originalMailing);
        expect(r.status, r.text).toBe(201);
        expect(r.body).toMatchObject({
          text: "text",
          start_time: "2026-12-01T09:00:00",
          end_time: "2026-12-02T09:00:00",
          tags_filter: [],
          codes_filter: ["910", "911"],
        });
        expect(r.headers.get("location")).toBe(`/api/v1/mailings/${r.body.id}`);
        expect((await t.request("GET", `/api/v1/mailings/${r.body.id}`)).body).toEqual(r.body);
        // The Moscow client gets it at 09:00 Moscow time.
        const messages = await t.request("GET", `/api/v1/mailings/${r.body.id}/messages`);
        expect(messages.body.items.map((m: { due_at: string }) => m.due_at)).toEqual(["2026-12-01T06:00:00.000Z"]);
        expectProblem(await t.request("POST", `/mailing/create${slash}`, { ...originalMailing, codes_filter: [91] }), 422, "codes_filter.0");
      });

      test("PATCH /mailing/update/{id} changes only the fields given", async () => {
        const id = (await t.request("GET", "/api/v1/mailings")).body.items[0].id;
        const r = await t.request("PATCH", `/mailing/update/${id}${slash}`, { text: "new text" });
        expect(r.status, r.text).toBe(200);
        expect(r.body).toMatchObject({ id, text: "new text", start_time: "2026-12-01T09:00:00", codes_filter: ["910", "911"] });
        expectProblem(await t.request("PATCH", `/mailing/update/${id}${slash}`, { end_time: "2026-09-32T00:00:00Z" }), 422, "end_time");
        expectProblem(await t.request("PATCH", `/mailing/update/999999${slash}`, { text: "x" }), 404, "id");
      });

      test("GET /stats and /stats/{id} answer like /api/v1/stats", async () => {
        const id = (await t.request("GET", "/api/v1/mailings")).body.items[0].id;
        const overall = await t.request("GET", `/stats${slash}`);
        expect(overall.status).toBe(200);
        expect(overall.body).toEqual((await t.request("GET", "/api/v1/stats")).body);
        expect(overall.body.mailings).toBe(1);
        expect(overall.body.messages.scheduled).toBe(1);
        const one = await t.request("GET", `/stats/${id}${slash}`);
        expect(one.status).toBe(200);
        expect(one.body).toEqual((await t.request("GET", `/api/v1/stats/${id}`)).body);
        expect(one.body.total).toBe(1);
        expectProblem(await t.request("GET", `/stats/999999${slash}`), 404, "id");
      });

      test("DELETE /mailing/delete/{id} and /clients/delete/{id} answer 204, then 404", async () => {
        const mailingId = (await t.request("GET", "/api/v1/mailings")).body.items[0].id;
        const clientId = (await t.request("GET", "/api/v1/clients")).body.items[0].id;
        expect((await t.request("DELETE", `/mailing/delete/${mailingId}${slash}`)).status).toBe(204);
        expectProblem(await t.request("GET", `/api/v1/mailings/${mailingId}`), 404, "id");
        expectProblem(await t.request("DELETE", `/mailing/delete/${mailingId}${slash}`), 404, "id");
        expect((await t.request("DELETE", `/clients/delete/${clientId}${slash}`)).status).toBe(204);
        expectProblem(await t.request("GET", `/api/v1/clients/${clientId}`), 404, "id");
        expectProblem(await t.request("DELETE", `/clients/delete/${clientId}${slash}`), 404, "id");
        // The phone is free again: the original body works once more.
        expect((await t.request("POST", `/clients/create${slash}`, originalClient)).status).toBe(201);
      });
    });
  }
}
