import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

// SPEC §5: six statuses, and the two a provider's delivery receipts add (issue 15)
const six = ["scheduled", "sending", "sent", "retrying", "failed", "expired", "delivered", "undelivered"];

for (const backend of backends()) {
  describe(`[${backend}] §5 statistics`, () => {
    let e: TestEngine;
    let running: number;
    let waiting: number;
    beforeAll(async () => {
      // Five clients, all sent; a second mailing, not due yet, matches only the client tagged x.
      e = await testEngine(backend, { now: "2026-12-01T10:00:00Z" });
      for (let i = 0; i < 5; i++) await e.request("POST", "/api/v1/clients", { phone_number: `7910000000${i}`, tag: i === 4 ? "x" : "" });
      running = (await e.request("POST", "/api/v1/mailings", { text: "now", start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" })).body.id;
      waiting = (await e.request("POST", "/api/v1/mailings", { text: "later", start_time: "2026-12-02T09:00:00", end_time: "2026-12-02T21:00:00", tags_filter: ["x"] })).body.id;
      await e.dispatcher.drain();
      // the client tagged x is deleted after being sent: its sent message stays counted
      const clients = (await e.request("GET", "/api/v1/clients?tag=x")).body.items;
      await e.request("DELETE", `/api/v1/clients/${clients[0].id}`);
    });
    afterAll(() => e.close());

    test("GET /api/v1/stats has every key, zeros included, and the numbers add up", async () => {
      const r = await e.request("GET", "/api/v1/stats");
      expect(r.status).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(["by_mailing", "mailings", "messages"]);
      expect(r.body.mailings).toBe(2);
      expect(r.body.messages).toEqual({ scheduled: 0, sending: 0, sent: 5, retrying: 0, failed: 0, expired: 0, delivered: 0, undelivered: 0 });
      expect(r.body.by_mailing).toHaveLength(2);
      const [first, second] = r.body.by_mailing;
      expect(Object.keys(first).sort()).toEqual(["by_status", "end_time", "mailing_id", "start_time", "status", "text", "total"]);
      // every message sent, yet its window is still open at UTC−12: running (SPEC §4)
      expect(first).toMatchObject({ mailing_id: running, text: "now", status: "running", start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00", total: 5 });
      expect(Object.keys(first.by_status).sort()).toEqual([...six].sort());
      // the waiting mailing's only client was deleted: its message is cancelled and not counted
      expect(second).toMatchObject({ mailing_id: waiting, status: "scheduled", total: 0 });
      expect(second.by_status).toEqual({ scheduled: 0, sending: 0, sent: 0, retrying: 0, failed: 0, expired: 0, delivered: 0, undelivered: 0 });
      for (const status of six) {
        expect(r.body.messages[status]).toBe(r.body.by_mailing.reduce((sum: number, m: { by_status: Record<string, number> }) => sum + m.by_status[status]!, 0));
      }
    });

    test("GET /api/v1/stats/{id} pages through the messages with limit and cursor, and filters by status", async () => {
      const page1 = await e.request("GET", `/api/v1/stats/${running}?limit=2`);
      expect(page1.status).toBe(200);
      expect(Object.keys(page1.body).sort()).toEqual(["by_status", "mailing", "messages", "next_cursor", "total"]);
      expect(page1.body.mailing).toMatchObject({ id: running, text: "now" });
      expect(page1.body.total).toBe(5);
      expect(page1.body.by_status.sent).toBe(5);
      expect(page1.body.messages).toHaveLength(2);
      expect(Object.keys(page1.body.messages[0]).sort()).toEqual(["attempts", "client_id", "id", "last_error", "phone_number", "provider_message_id", "sent_at", "status"]);
      expect(page1.body.messages[0]).toMatchObject({ status: "sent", attempts: 1, sent_at: "2026-12-01T10:00:00.000Z", last_error: null, provider_message_id: null });
      const seen = [...page1.body.messages];
      let cursor = page1.body.next_cursor;
      while (cursor !== null) {
        const next = await e.request("GET", `/api/v1/stats/${running}?limit=2&cursor=${cursor}`);
        seen.push(...next.body.messages);
        cursor = next.body.next_cursor;
      }
      expect(seen.map((m) => m.phone_number).sort()).toEqual(["79100000000", "79100000001", "79100000002", "79100000003", "79100000004"]);
      expect(new Set(seen.map((m) => m.id)).size).toBe(5);
      expect((await e.request("GET", `/api/v1/stats/${running}?status=failed`)).body.messages).toEqual([]);
      expect((await e.request("GET", `/api/v1/stats/${waiting}?status=cancelled`)).body.messages).toHaveLength(1);
      expect((await e.request("GET", `/api/v1/stats/${waiting}`)).body.messages).toEqual([]);
    });

    test("unknown and malformed ids, and a bad status filter", async () => {
      expect((await e.request("GET", "/api/v1/stats/999999")).status).toBe(404);
      expect((await e.request("GET", "/api/v1/stats/abc")).status).toBe(422);
      const bad = await e.request("GET", `/api/v1/stats/${running}?status=lost`);
      expect(bad.status).toBe(422);
      expect(bad.body.errors[0].field).toBe("status");
      expect((await e.request("GET", `/api/v1/stats/${running}?limit=5000`)).status).toBe(422);
    });

    test("the compatibility routes answer with the same shapes", async () => {
      const modern = await e.request("GET", "/api/v1/stats");
      expect((await e.request("GET", "/stats/")).body).toEqual(modern.body);
      expect((await e.request("GET", "/stats")).body).toEqual(modern.body);
      const one = await e.request("GET", `/api/v1/stats/${running}`);
      expect((await e.request("GET", `/stats/${running}/`)).body).toEqual(one.body);
    });

    test("GET /api/v1/mailings/{id}/messages lists full messages", async () => {
      const r = await e.request("GET", `/api/v1/mailings/${running}/messages?limit=10`);
      expect(r.status).toBe(200);
      expect(r.body.items).toHaveLength(5);
      expect(Object.keys(r.body.items[0]).sort()).toEqual(
        ["attempts", "client_id", "created_at", "due_at", "id", "last_error", "mailing_id", "next_attempt_at", "phone_number", "provider_message_id", "sent_at", "status"].sort(),
      );
      expect(r.body.items[0]).toMatchObject({ mailing_id: running, status: "sent", due_at: "2026-12-01T09:00:00.000Z" });
      expect(r.body.next_cursor).toBeNull();
      expect((await e.request("GET", "/api/v1/mailings/999999/messages")).status).toBe(404);
    });

    test("a started mailing is running, in /stats as in /mailings, until its end passes at UTC−12 (last: it adds a mailing)", async () => {
      const id = (await e.request("POST", "/api/v1/mailings", { text: "pending", start_time: "2026-12-01T09:30:00", end_time: "2026-12-01T22:00:00" })).body.id;
      const entry = (await e.request("GET", "/api/v1/stats")).body.by_mailing.find((m: { mailing_id: number }) => m.mailing_id === id);
      // four clients are left (the one tagged x was deleted), none sent yet; the dispatcher, woken
      // by the create, may already have claimed them (sending)
      expect(entry).toMatchObject({ status: "running", total: 4, by_status: { sent: 0, retrying: 0, failed: 0, expired: 0 } });
      expect(entry.by_status.scheduled + entry.by_status.sending).toBe(4);
      expect((await e.request("GET", `/api/v1/mailings/${id}`)).body.status).toBe("running");
      await e.dispatcher.drain();
      const after = (await e.request("GET", "/api/v1/stats")).body.by_mailing.find((m: { mailing_id: number }) => m.mailing_id === id);
      // Nothing left to send, but the window is open at UTC−12 until 2026-12-02T10:00Z: still running.
      expect(after).toMatchObject({ status: "running", total: 4, by_status: { scheduled: 0, sent: 4 } });
      expect((await e.request("GET", `/api/v1/mailings/${id}`)).body).toMatchObject({ status: "running", pending: 0, closes_at: "2026-12-02T10:00:00.000Z" });
    });
  });
}
