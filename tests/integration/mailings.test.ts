/** SPEC §4 and §8: mailings through app.handle(), on PGlite and (with DATABASE_URL) PostgreSQL. Clock: 2026-12-01T00:00:00Z. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { expectProblem, snapshot } from "./expect-problem";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

const valid = {
  text: "Winter sale",
  start_time: "2026-12-01T09:00:00",
  end_time: "2026-12-01T21:00:00",
};

for (const backend of backends()) {
  describe(`[${backend}] §4 mailings`, () => {
    let t: TestApp;
    let moscow: number;
    let vladivostok: number;
    beforeAll(async () => {
      t = await testApp(backend);
      moscow = (await t.request("POST", "/api/v1/clients", { phone_number: 9101000001, tag: "vip", timezone: "Europe/Moscow" })).body.id;
      vladivostok = (await t.request("POST", "/api/v1/clients", { phone_number: 9111000002, tag: "plain", timezone: "Asia/Vladivostok" })).body.id;
    });
    afterAll(() => t.close());

    const create = (body: unknown) => t.request("POST", "/api/v1/mailings", body);

    test("create answers 201 with the object and a Location header", async () => {
      const r = await create({ ...valid, tags_filter: ["vip"], codes_filter: [910, "911"], send_window: { from: "09:00", to: "21:00" } });
      expect(r.status, r.text).toBe(201);
      expect(r.body).toEqual({
        id: expect.any(Number),
        text: "Winter sale",
        start_time: "2026-12-01T09:00:00",
        end_time: "2026-12-01T21:00:00",
        tags_filter: ["vip"],
        codes_filter: ["910", "911"],
        send_window: { from: "09:00", to: "21:00" },
        status: "running",
        pending: expect.any(Number),
        // 21:00 at UTC−12
        closes_at: "2026-12-02T09:00:00.000Z",
        sms: { encoding: "GSM-7", characters: 11, segments: 1 },
        created_at: "2026-12-01T00:00:00.000Z",
        updated_at: "2026-12-01T00:00:00.000Z",
      });
      expect(r.headers.get("location")).toBe(`/api/v1/mailings/${r.body.id}`);
      const got = await t.request("GET", `/api/v1/mailings/${r.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(r.body);
    });

    test("a Z or an offset in the input does not shift the stored wall time", async () => {
      for (const [start, end] of [
        ["2026-12-01T09:00:00Z", "2026-12-01T21:00:00Z"],
        ["2026-12-01T09:00:00+05:00", "2026-12-01T21:00:00-03:30"],
        ["2026-12-01T09:00:00.000+14:00", "2026-12-01T21:00:00.5Z"],
      ]) {
        const r = await create({ ...valid, start_time: start, end_time: end });
        expect(r.status, r.text).toBe(201);
        expect(r.body.start_time).toBe("2026-12-01T09:00:00");
        expect(r.body.end_time).toBe("2026-12-01T21:00:00");
        const got = await t.request("GET", `/api/v1/mailings/${r.body.id}`);
        expect(got.body.start_time).toBe("2026-12-01T09:00:00");
        expect(got.body.end_time).toBe("2026-12-01T21:00:00");
      }
    });

    test("09:00Z reaches Moscow at 09:00 Moscow time and Vladivostok at 09:00 Vladivostok time", async () => {
      const m = await create({ ...valid, start_time: "2026-12-01T09:00:00Z", end_time: "2026-12-01T21:00:00Z" });
      const messages = await t.request("GET", `/api/v1/mailings/${m.body.id}/messages`);
      expect(messages.status).toBe(200);
      const due = Object.fromEntries(messages.body.items.map((x: { client_id: number; due_at: string }) => [x.client_id, x.due_at]));
      expect(due[moscow]).toBe("2026-12-01T06:00:00.000Z");
      expect(due[vladivostok]).toBe("2026-11-30T23:00:00.000Z");
    });

    test("codes_filter accepts numbers and strings and stores distinct 3-digit strings", async () => {
      const r = await create({ ...valid, codes_filter: [910, "910", "911", 912] });
      expect(r.status).toBe(201);
      expect(r.body.codes_filter).toEqual(["910", "911", "912"]);
    });

    test("a send_window may wrap midnight", async () => {
      const r = await create({ ...valid, end_time: "2026-12-03T09:00:00", send_window: { from: "22:00", to: "06:00" } });
      expect(r.status).toBe(201);
      expect(r.body.send_window).toEqual({ from: "22:00", to: "06:00" });
    });

    describe("every validation rule of §4 → 422 naming the field, nothing written", () => {
      const cases: [string, Record<string, unknown>, string | string[]][] = [
        ["end_time equal to start_time", { ...valid, end_time: valid.start_time }, "end_time"],
        ["end_time before start_time", { ...valid, end_time: "2026-12-01T08:00:00" }, "end_time"],
        ["end_time before start_time, both with Z", { ...valid, start_time: "2026-12-01T09:00:00Z", end_time: "2026-12-01T08:59:59Z" }, "end_time"],
        // Now is 2026-11-30T12:00 at UTC−12: an end at 11:00 that day is over everywhere.
        ["a window already over in every zone", { ...valid, start_time: "2026-11-30T09:00:00", end_time: "2026-11-30T11:00:00" }, "end_time"],
        ["a window that ended exactly now at UTC−12", { ...valid, start_time: "2026-11-30T09:00:00", end_time: "2026-11-30T12:00:00" }, "end_time"],
        ["a malformed start_time 2026-09-32", { ...valid, start_time: "2026-09-32T09:00:00" }, "start_time"],
        ["a malformed end_time 2026-09-32", { ...valid, end_time: "2026-09-32T09:00:00" }, "end_time"],
        ["an impossible date 2026-02-30", { ...valid, start_time: "2026-02-30T09:00:00" }, "start_time"],
        ["a start_time that is no date at all", { ...valid, start_time: "tomorrow" }, "start_time"],
        ["a date without a time", { ...valid, start_time: "2026-12-01" }, "start_time"],
        ["a year out of range", { ...valid, start_time: "0001-01-01T09:00:00" }, "start_time"],
        ["a far-future end", { ...valid, end_time: "9999-12-31T23:00:00" }, "end_time"],
        ["a 2-digit code", { ...valid, codes_filter: [91] }, "codes_filter.0"],
        ["a 4-digit code", { ...valid, codes_filter: ["910", "9100"] }, "codes_filter.1"],
        ["a code with letters", { ...valid, codes_filter: ["9a0"] }, "codes_filter.0"],
        ["a fractional code", { ...valid, codes_filter: [910.5] }, "codes_filter.0"],
        ["empty text", { ...valid, text: "" }, "text"],
        ["blank text", { ...valid, text: "   " }, "text"],
        ["text over 1000 characters", { ...valid, text: "x".repeat(1001) }, "text"],
        ["send_window.from not HH:MM", { ...valid, send_window: { from: "9:00", to: "21:00" } }, "send_window.from"],
        ["send_window.to not HH:MM", { ...valid, send_window: { from: "09:00", to: "24:00" } }, "send_window.to"],
        ["send_window with seconds", { ...valid, send_window: { from: "09:00:00", to: "21:00" } }, "send_window.from"],
        ["an empty send_window", { ...valid, send_window: { from: "09:00", to: "09:00" } }, "send_window.to"],
        ["send_window missing to", { ...valid, send_window: { from: "09:00" } }, ["send_window.to", "send_window"]],
        ["missing text", { start_time: valid.start_time, end_time: valid.end_time }, "text"],
        ["missing start_time", { text: "x", end_time: valid.end_time }, "start_time"],
        ["missing end_time", { text: "x", start_time: valid.start_time }, "end_time"],
      ];
      for (const [label, body, field] of cases) {
        test(label, async () => {
          const before = await snapshot(t.database);
          expectProblem(await create(body), 422, field);
          expect(await snapshot(t.database)).toEqual(before);
        });
      }

      test("a window that is over in UTC but still open at UTC−12 is accepted", async () => {
        const r = await create({ ...valid, start_time: "2026-11-30T09:00:00", end_time: "2026-11-30T13:00:00" });
        expect(r.status, r.text).toBe(201);
      });

      test("several bad fields are all named in one answer", async () => {
        const r = await create({ text: "", start_time: "2026-09-32T09:00:00", end_time: "x", codes_filter: ["1"] });
        expectProblem(r, 422);
        const fields = r.body.errors.map((e: { field: string }) => e.field).sort();
        expect(fields).toEqual(["codes_filter.0", "end_time", "start_time", "text"]);
      });
    });

    test("PATCH changes only the fields given", async () => {
      const m = await create({ ...valid, tags_filter: ["vip"], codes_filter: [910], send_window: { from: "08:00", to: "22:00" } });
      t.clock.advance(30);
      const text = await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { text: "Changed" });
      expect(text.status, text.text).toBe(200);
      expect(text.body).toEqual({ ...m.body, text: "Changed", sms: { encoding: "GSM-7", characters: 7, segments: 1 }, updated_at: "2026-12-01T00:00:30.000Z" });
      const end = await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { end_time: "2026-12-02T21:00:00Z" });
      expect(end.body).toMatchObject({ text: "Changed", start_time: "2026-12-01T09:00:00", end_time: "2026-12-02T21:00:00", tags_filter: ["vip"], codes_filter: ["910"] });
      const filters = await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { tags_filter: [], codes_filter: ["911"] });
      expect(filters.body).toMatchObject({ tags_filter: [], codes_filter: ["911"], send_window: { from: "08:00", to: "22:00" } });
      const noWindow = await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { send_window: null });
      expect(noWindow.body.send_window).toBeNull();
      expect(noWindow.body.text).toBe("Changed");
      const got = await t.request("GET", `/api/v1/mailings/${m.body.id}`);
      expect(got.body).toEqual(noWindow.body);
      t.clock.set("2026-12-01T00:00:00Z");
    });

    test("PATCH is validated against the merged mailing, and a rejected PATCH changes nothing", async () => {
      const m = await create(valid);
      const before = await snapshot(t.database);
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { start_time: "2026-12-02T00:00:00" }), 422, "end_time");
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { end_time: "2026-11-30T10:00:00" }), 422, "end_time");
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { text: "" }), 422, "text");
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { codes_filter: [1] }), 422, "codes_filter.0");
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { send_window: { from: "9", to: "10:00" } }), 422, "send_window.from");
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { start_time: "2026-09-32T00:00:00" }), 422, "start_time");
      expect(await snapshot(t.database)).toEqual(before);
    });

    test("pause, resume and cancel change the derived status; a cancelled mailing cannot change", async () => {
      const m = await create(valid);
      expect(m.body.status).toBe("running");
      const paused = await t.request("POST", `/api/v1/mailings/${m.body.id}/pause`);
      expect(paused.status).toBe(200);
      expect(paused.body.status).toBe("paused");
      expect((await t.request("POST", `/api/v1/mailings/${m.body.id}/pause`)).body.status).toBe("paused");
      const resumed = await t.request("POST", `/api/v1/mailings/${m.body.id}/resume`);
      expect(resumed.status).toBe(200);
      expect(resumed.body.status).toBe("running");
      const cancelled = await t.request("POST", `/api/v1/mailings/${m.body.id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe("cancelled");
      expect((await t.request("POST", `/api/v1/mailings/${m.body.id}/cancel`)).body.status).toBe("cancelled");
      expectProblem(await t.request("POST", `/api/v1/mailings/${m.body.id}/pause`), 409);
      expectProblem(await t.request("POST", `/api/v1/mailings/${m.body.id}/resume`), 409);
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { text: "again" }), 409);
      const got = await t.request("GET", `/api/v1/mailings/${m.body.id}`);
      expect(got.body.status).toBe("cancelled");
      expect(got.body.text).toBe("Winter sale");
      const messages = await t.request("GET", `/api/v1/mailings/${m.body.id}/messages?status=cancelled`);
      expect(messages.body.items.length).toBeGreaterThan(0);
    });

    test("actions on unknown or malformed ids", async () => {
      for (const action of ["pause", "resume", "cancel"]) {
        expectProblem(await t.request("POST", `/api/v1/mailings/999999/${action}`), 404, "id");
        expectProblem(await t.request("POST", `/api/v1/mailings/abc/${action}`), 422, "id");
      }
    });

    test("DELETE answers 204 and the mailing and its messages are gone", async () => {
      const m = await create(valid);
      expect((await t.request("GET", `/api/v1/mailings/${m.body.id}/messages`)).body.items.length).toBe(2);
      const del = await t.request("DELETE", `/api/v1/mailings/${m.body.id}`);
      expect(del.status).toBe(204);
      expect(del.text).toBe("");
      expectProblem(await t.request("GET", `/api/v1/mailings/${m.body.id}`), 404, "id");
      expectProblem(await t.request("GET", `/api/v1/mailings/${m.body.id}/messages`), 404, "id");
      expectProblem(await t.request("DELETE", `/api/v1/mailings/${m.body.id}`), 404, "id");
      expectProblem(await t.request("PATCH", `/api/v1/mailings/${m.body.id}`, { text: "x" }), 404, "id");
    });
  });

  describe(`[${backend}] §8 mailing list: pagination and status filter`, () => {
    let t: TestApp;
    const ids: Record<string, number> = {};
    beforeAll(async () => {
      t = await testApp(backend);
      await t.request("POST", "/api/v1/clients", { phone_number: 9101000001, timezone: "UTC" });
      const make = async (key: string, body: Record<string, unknown>) => {
        const r = await t.request("POST", "/api/v1/mailings", { text: key, ...body });
        expect(r.status, r.text).toBe(201);
        ids[key] = r.body.id;
      };
      await make("scheduled", { start_time: "2026-12-05T09:00:00", end_time: "2026-12-05T21:00:00" });
      await make("running", { start_time: "2026-11-30T09:00:00", end_time: "2026-12-02T21:00:00" });
      // Over for the UTC client (expired at once), still open at UTC−12 until 01:00Z (SPEC §4).
      await make("finished", { start_time: "2026-11-29T09:00:00", end_time: "2026-11-30T13:00:00" });
      await make("paused", { start_time: "2026-11-30T09:00:00", end_time: "2026-12-02T21:00:00" });
      await make("cancelled", { start_time: "2026-11-30T09:00:00", end_time: "2026-12-02T21:00:00" });
      expect((await t.request("POST", `/api/v1/mailings/${ids.paused}/pause`)).status).toBe(200);
      expect((await t.request("POST", `/api/v1/mailings/${ids.cancelled}/cancel`)).status).toBe(200);
      // An hour later its end has passed at UTC−12 too: finished.
      t.clock.set("2026-12-01T02:00:00Z");
    });
    afterAll(() => t.close());

    test("each mailing has the derived status", async () => {
      const all = await t.request("GET", "/api/v1/mailings");
      expect(all.status).toBe(200);
      expect(Object.fromEntries(all.body.items.map((m: { text: string; status: string }) => [m.text, m.status]))).toEqual({
        scheduled: "scheduled",
        running: "running",
        finished: "finished",
        paused: "paused",
        cancelled: "cancelled",
      });
      expect(all.body.next_cursor).toBeNull();
    });

    test("?status= lists only mailings in that status", async () => {
      for (const status of ["scheduled", "running", "finished", "paused", "cancelled"]) {
        const r = await t.request("GET", `/api/v1/mailings?status=${status}`);
        expect(r.status).toBe(200);
        expect(r.body.items.map((m: { id: number }) => m.id)).toEqual([ids[status]!]);
      }
      expectProblem(await t.request("GET", "/api/v1/mailings?status=bogus"), 422, "status");
    });

    test("pages of two walk every mailing once", async () => {
      const seen: number[] = [];
      let url = "/api/v1/mailings?limit=2";
      for (let i = 0; i < 10; i++) {
        const r = await t.request("GET", url);
        expect(r.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...r.body.items.map((m: { id: number }) => m.id));
        if (r.body.next_cursor === null) break;
        url = `/api/v1/mailings?limit=2&cursor=${r.body.next_cursor}`;
      }
      expect(seen).toEqual(Object.values(ids).sort((a, b) => a - b));
    });
  });
}
