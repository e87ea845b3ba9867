import { afterEach, describe, expect, test } from "bun:test";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] §4 planning in each client's time zone`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    const client = (phone: string, timezone?: string, tag?: string) => e.client(phone, timezone, tag);
    const mailing = (body: Record<string, unknown>) => e.mailing(body);
    async function byPhone(mailingId: number) {
      return Object.fromEntries((await e.messages(mailingId)).map((m) => [m.phone_number, m]));
    }

    test("the same 09:00 reaches Vladivostok, Moscow and New York at their own 09:00", async () => {
      e = await testEngine(backend, { now: "2026-11-30T00:00:00Z" });
      await client("79100000001", "Asia/Vladivostok");
      await client("79100000002", "Europe/Moscow");
      await client("79100000003", "America/New_York");
      const id = await mailing({ start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" });
      const m = await byPhone(id);
      expect(m["79100000001"]).toMatchObject({ status: "scheduled", due_at: "2026-11-30T23:00:00Z", expires_at: "2026-12-01T11:00:00Z" });
      expect(m["79100000002"]).toMatchObject({ status: "scheduled", due_at: "2026-12-01T06:00:00Z", expires_at: "2026-12-01T18:00:00Z" });
      expect(m["79100000003"]).toMatchObject({ status: "scheduled", due_at: "2026-12-01T14:00:00Z", expires_at: "2026-12-02T02:00:00Z" });
      expect(m["79100000002"]!.next_attempt_at).toBe("2026-12-01T06:00:00Z");
    });

    test("a window already over in Kiritimati (UTC+14) but open in Pago Pago (UTC−11)", async () => {
      e = await testEngine(backend, { now: "2026-12-01T12:00:00Z" });
      await client("79100000001", "Pacific/Kiritimati");
      await client("79100000002", "Pacific/Pago_Pago");
      const id = await mailing({ start_time: "2026-12-01T00:00:00", end_time: "2026-12-01T20:00:00" });
      const m = await byPhone(id);
      expect(m["79100000001"]!.status).toBe("expired");
      expect(m["79100000002"]!.due_at).toBe("2026-12-01T11:00:00Z");
      await e.dispatcher.drain(); // due now: the creation already woke the dispatcher
      expect((await byPhone(id))["79100000002"]!.status).toBe("sent");
      const stats = await e.request("GET", `/api/v1/stats/${id}`);
      expect(stats.body.by_status).toEqual({ scheduled: 0, sending: 0, sent: 1, retrying: 0, failed: 0, expired: 1, delivered: 0, undelivered: 0 });
      expect(e.gateway.received.size).toBe(1);
    });

    test("a start in a DST gap (New York 2027-03-14T02:30) resolves forward, as Temporal 'compatible'", async () => {
      e = await testEngine(backend, { now: "2027-03-13T00:00:00Z" });
      await client("79100000001", "America/New_York");
      const id = await mailing({ start_time: "2027-03-14T02:30:00", end_time: "2027-03-14T12:00:00" });
      expect((await byPhone(id))["79100000001"]!.due_at).toBe("2027-03-14T07:30:00Z"); // 03:30 EDT
    });

    test("a start in a DST overlap (Berlin 2027-10-31T02:30) takes the earlier instant", async () => {
      e = await testEngine(backend, { now: "2027-10-30T00:00:00Z" });
      await client("79100000001", "Europe/Berlin");
      const id = await mailing({ start_time: "2027-10-31T02:30:00", end_time: "2027-10-31T12:00:00" });
      expect((await byPhone(id))["79100000001"]!.due_at).toBe("2027-10-31T00:30:00Z"); // 02:30 CEST
    });

    test("a Z or an offset in the input does not shift the wall time", async () => {
      e = await testEngine(backend, { now: "2026-11-30T00:00:00Z" });
      await client("79100000001", "Europe/Moscow");
      for (const suffix of ["Z", "+05:00", "-03:00"]) {
        const r = await e.request("POST", "/api/v1/mailings", {
          text: "x",
          start_time: `2026-12-01T09:00:00${suffix}`,
          end_time: `2026-12-01T21:00:00${suffix}`,
        });
        expect(r.body.start_time).toBe("2026-12-01T09:00:00");
        expect(r.body.end_time).toBe("2026-12-01T21:00:00");
        expect((await byPhone(r.body.id))["79100000001"]!.due_at).toBe("2026-12-01T06:00:00Z");
      }
    });

    test("filter: AND between the lists, OR within a list, an empty list matches all", async () => {
      e = await testEngine(backend, { now: "2026-11-30T00:00:00Z" });
      await client("79100000001", "UTC", "a"); // 910, a
      await client("79100000002", "UTC", "b"); // 910, b
      await client("79100000003", "UTC", "c"); // 910, c
      await client("79200000004", "UTC", "a"); // 920, a
      const times = { start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" };
      const both = await mailing({ ...times, tags_filter: ["a", "b"], codes_filter: [910] });
      expect(Object.keys(await byPhone(both)).sort()).toEqual(["79100000001", "79100000002"]);
      const tagsOnly = await mailing({ ...times, tags_filter: ["a"] });
      expect(Object.keys(await byPhone(tagsOnly)).sort()).toEqual(["79100000001", "79200000004"]);
      const codesOnly = await mailing({ ...times, codes_filter: ["920"] });
      expect(Object.keys(await byPhone(codesOnly))).toEqual(["79200000004"]);
      const all = await mailing({ ...times, tags_filter: [], codes_filter: [] });
      expect(Object.keys(await byPhone(all))).toHaveLength(4);
    });
  });

  describe(`[${backend}] §3 §4 re-planning`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    const client = (phone: string, timezone?: string, tag?: string) => e.client(phone, timezone, tag);
    const mailing = (body: Record<string, unknown>) => e.mailing(body);
    async function one(mailingId: number, phone: string) {
      return (await e.messages(mailingId)).find((m) => m.phone_number === phone);
    }
    const times = { start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" };

    test("a client created mid-window is planned; one whose window is over is not", async () => {
      e = await testEngine(backend, { now: "2026-12-01T12:00:00Z" });
      const id = await mailing({ ...times, start_time: "2026-12-01T13:00:00" });
      await client("79100000001", "UTC");
      expect(await one(id, "79100000001")).toMatchObject({ status: "scheduled", due_at: "2026-12-01T13:00:00Z" });
      await client("79100000002", "Asia/Vladivostok"); // 22:00 there: over
      expect(await one(id, "79100000002")).toBeUndefined();
    });

    test("a client whose zone changes has its unsent message moved", async () => {
      e = await testEngine(backend, { now: "2026-11-30T00:00:00Z" });
      const c = await client("79100000001", "UTC");
      const id = await mailing(times);
      expect((await one(id, "79100000001"))!.due_at).toBe("2026-12-01T09:00:00Z");
      expect((await e.request("PATCH", `/api/v1/clients/${c}`, { timezone: "Europe/Moscow" })).status).toBe(200);
      expect(await one(id, "79100000001")).toMatchObject({ status: "scheduled", due_at: "2026-12-01T06:00:00Z" });
    });

    test("a client that no longer matches is cancelled, and revived when it matches again", async () => {
      e = await testEngine(backend, { now: "2026-11-30T00:00:00Z" });
      const c = await client("79100000001", "UTC", "vip");
      const id = await mailing({ ...times, tags_filter: ["vip"] });
      await e.request("PATCH", `/api/v1/clients/${c}`, { tag: "regular" });
      expect((await one(id, "79100000001"))!.status).toBe("cancelled");
      expect((await e.request("GET", `/api/v1/stats/${id}`)).body.total).toBe(0);
      await e.request("PATCH", `/api/v1/clients/${c}`, { tag: "vip" });
      expect((await one(id, "79100000001"))!.status).toBe("scheduled");
    });

    test("a changed phone number travels with the unsent message", async () => {
      e = await testEngine(backend, { now: "2026-11-30T00:00:00Z" });
      const c = await client("79100000001", "UTC");
      const id = await mailing(times);
      await e.request("PATCH", `/api/v1/clients/${c}`, { phone_number: "79100000009" });
      expect((await e.messages(id))[0]!.phone_number).toBe("79100000009");
    });

    test("deleting a client cancels its unsent messages; sent ones stay in the statistics", async () => {
      e = await testEngine(backend, { now: "2026-12-01T10:00:00Z" });
      const sentClient = await client("79100000001", "UTC");
      const id = await mailing(times);
      await e.dispatcher.drain();
      const waiting = await client("79100000002", "America/New_York"); // 05:00 there: not yet due
      expect((await one(id, "79100000002"))!.status).toBe("scheduled");
      expect((await e.request("DELETE", `/api/v1/clients/${waiting}`)).status).toBe(204);
      expect((await e.request("DELETE", `/api/v1/clients/${sentClient}`)).status).toBe(204);
      expect((await one(id, "79100000002"))!.status).toBe("cancelled");
      const stats = await e.request("GET", `/api/v1/stats/${id}`);
      expect(stats.body.total).toBe(1);
      expect(stats.body.by_status.sent).toBe(1);
      expect(stats.body.messages[0].phone_number).toBe("79100000001");
      // the phone number is free again
      expect((await e.request("POST", "/api/v1/clients", { phone_number: "79100000001" })).status).toBe(201);
    });

    test("PATCH of a mailing re-plans unsent messages and never touches sent ones", async () => {
      e = await testEngine(backend, { now: "2026-12-01T10:00:00Z" });
      await client("79100000001", "UTC", "a"); // due at 09:00 UTC: sent now
      await client("79100000002", "America/New_York", "a"); // due at 14:00 UTC
      await client("79100000003", "America/New_York", "b");
      const id = await mailing({ ...times, tags_filter: ["a"] });
      await e.dispatcher.drain();
      expect((await one(id, "79100000001"))!.status).toBe("sent");
      const r = await e.request("PATCH", `/api/v1/mailings/${id}`, { tags_filter: ["b"], start_time: "2026-12-01T10:00:00" });
      expect(r.status).toBe(200);
      expect(r.body.tags_filter).toEqual(["b"]);
      expect(r.body.end_time).toBe("2026-12-01T21:00:00");
      expect((await one(id, "79100000001"))!.status).toBe("sent");
      expect((await one(id, "79100000002"))!.status).toBe("cancelled");
      expect(await one(id, "79100000003")).toMatchObject({ status: "scheduled", due_at: "2026-12-01T15:00:00Z" });
      const stats = await e.request("GET", `/api/v1/stats/${id}`);
      expect(stats.body.by_status).toEqual({ scheduled: 1, sending: 0, sent: 1, retrying: 0, failed: 0, expired: 0, delivered: 0, undelivered: 0 });
      expect(stats.body.total).toBe(2);
    });

    test("extending end_time revives messages that had expired", async () => {
      e = await testEngine(backend, { now: "2026-12-01T22:00:00Z" });
      await client("79100000001", "UTC");
      await client("79100000002", "America/New_York");
      const id = await mailing(times);
      expect((await one(id, "79100000001"))!.status).toBe("expired");
      await e.request("PATCH", `/api/v1/mailings/${id}`, { end_time: "2026-12-01T23:30:00" });
      await e.dispatcher.drain(); // revived and due now
      expect((await one(id, "79100000001"))!.status).toBe("sent");
    });
  });
}
