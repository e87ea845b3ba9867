/**
 * SPEC §4 mailing status: a mailing is `finished` only once its end has passed in the last zone a
 * client can have (UTC−12); before that, with nothing left to send, it stays `running`, says so with
 * `pending: 0`, and tells when it closes (`closes_at`) — a client added meanwhile still gets it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §4 a mailing over in some zones but open in others`, () => {
    let t: TestApp;
    let id: number;
    beforeAll(async () => {
      // 00:00 UTC on 1 December: the end (20:00 on 30 November) has passed in UTC, not yet in
      // Los Angeles (04:00Z) nor at UTC−12 (08:00Z).
      t = await testApp(backend, { now: "2026-12-01T00:00:00Z" });
      expect((await t.request("POST", "/api/v1/clients", { phone_number: 79101000001, timezone: "UTC" })).status).toBe(201);
      const created = await t.request("POST", "/api/v1/mailings", { text: "late", start_time: "2026-11-30T09:00:00", end_time: "2026-11-30T20:00:00" });
      expect(created.status, created.text).toBe(201);
      id = created.body.id;
    });
    afterAll(() => t.close());

    test("with nothing left to send it is running, pending 0, closing when the end passes at UTC−12", async () => {
      const r = await t.request("GET", `/api/v1/mailings/${id}`);
      expect(r.body).toMatchObject({ status: "running", pending: 0, closes_at: "2026-12-01T08:00:00.000Z" });
      const listed = await t.request("GET", "/api/v1/mailings?status=running");
      expect(listed.body.items.map((m: { id: number }) => m.id)).toEqual([id]);
      const stats = await t.request("GET", "/api/v1/stats");
      expect(stats.body.by_mailing[0]).toMatchObject({ mailing_id: id, status: "running", by_status: { expired: 1 } });
      expect((await t.request("GET", `/api/v1/stats/${id}`)).body.mailing).toMatchObject({ status: "running", pending: 0 });
    });

    test("a client added in a zone where it is still open is planned, and the mailing counts it as pending", async () => {
      const added = await t.request("POST", "/api/v1/clients", { phone_number: 79101000002, timezone: "America/Los_Angeles" });
      expect(added.status, added.text).toBe(201);
      const r = await t.request("GET", `/api/v1/mailings/${id}`);
      expect(r.body).toMatchObject({ status: "running", pending: 1 });
    });

    test("once the end has passed at UTC−12 it is finished", async () => {
      t.clock.set("2026-12-01T08:00:00Z");
      expect((await t.request("GET", `/api/v1/mailings/${id}`)).body.status).toBe("finished");
      const listed = await t.request("GET", "/api/v1/mailings?status=finished");
      expect(listed.body.items.map((m: { id: number }) => m.id)).toEqual([id]);
    });
  });
}
