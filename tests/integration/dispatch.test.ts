import { afterEach, describe, expect, test } from "bun:test";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

const day = "2026-12-01";

for (const backend of backends()) {
  describe(`[${backend}] §6 dispatcher`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    const client = (phone: string, timezone?: string, tag?: string) => e.client(phone, timezone, tag);
    const mailing = (body: Record<string, unknown>) => e.mailing(body);

    test("a due message is sent once through the gateway and counted as sent", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await client("79101234567", "Europe/Moscow");
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      const [m] = await e.messages(id);
      expect(m!.status).toBe("sent");
      expect(m!.attempts).toBe(1);
      expect(m!.sent_at).toBe(`${day}T10:00:00Z`);
      expect(e.gateway.received.get(m!.id)).toBe(1);
      expect(e.gateway.bodies[0]).toMatchObject({ id: m!.id, phone: 79101234567, text: "hello" });
      const stats = await e.request("GET", "/api/v1/stats");
      expect(stats.body.messages).toEqual({ scheduled: 0, sending: 0, sent: 1, retrying: 0, failed: 0, expired: 0, delivered: 0, undelivered: 0 });
    });

    test("each send attempt is one JSON log line with mailing_id, message_id, client_id, attempt, outcome, latency", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      const clientId = await client("79101234567");
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      const [m] = await e.messages(id);
      const lines = e.logger.lines.filter((l) => l.msg === "send");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ mailing_id: id, message_id: m!.id, client_id: clientId, attempt: 1, outcome: "sent" });
      expect(typeof lines[0]!.latency_ms).toBe("number");
    });

    test("a message is not sent before its client-local start", async () => {
      e = await testEngine(backend, { now: `${day}T05:00:00Z` });
      await client("79101234567", "Europe/Moscow"); // 08:00 in Moscow
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("scheduled");
      expect(e.gateway.received.size).toBe(0);
      e.clock.set(`${day}T06:00:00Z`); // 09:00 in Moscow
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("sent");
    });

    test("a retryable failure is retried after RETRY_DELAY_SECONDS, not before", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { failRate: 1 } });
      await client("79101234567");
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      let [m] = await e.messages(id);
      expect(m!.status).toBe("retrying");
      expect(m!.next_attempt_at).toBe(`${day}T10:05:00Z`);
      expect(m!.last_error).toContain("503");
      e.gateway.options.failRate = 0;
      e.clock.advance(299);
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("retrying");
      e.clock.advance(1);
      await e.dispatcher.drain();
      [m] = await e.messages(id);
      expect(m!.status).toBe("sent");
      expect(m!.attempts).toBe(2);
      expect(e.gateway.received.get(m!.id)).toBe(2);
    });

    test("a permanent refusal (4xx) fails the message without retry", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { rejectRate: 1 } });
      await client("79101234567");
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      e.clock.advance(3600);
      await e.dispatcher.drain();
      const [m] = await e.messages(id);
      expect(m!.status).toBe("failed");
      expect(m!.attempts).toBe(1);
      expect(m!.last_error).toContain("400");
    });

    test("a retry that would land after the client-local end expires instead; nothing is sent after the end", async () => {
      e = await testEngine(backend, { now: `${day}T20:58:00Z`, gateway: { failRate: 1 } });
      await client("79101234567");
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("expired");
      expect(e.gateway.received.size).toBe(1);
    });

    test("a message whose window closes while the dispatcher is away is expired, never sent", async () => {
      e = await testEngine(backend, { now: `${day}T08:00:00Z` });
      await client("79101234567");
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T10:00:00` });
      e.clock.set(`${day}T10:00:00Z`);
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("expired");
      expect(e.gateway.received.size).toBe(0);
    });

    test("send_window: a message due outside the window waits for the next client-local opening", async () => {
      e = await testEngine(backend, { now: `${day}T05:00:00Z` });
      await client("79101234567", "Europe/Moscow"); // 08:00 local
      const id = await mailing({ start_time: `${day}T00:00:00`, end_time: `${day}T23:00:00`, send_window: { from: "09:30", to: "18:00" } });
      let [m] = await e.messages(id);
      expect(m!.next_attempt_at).toBe(`${day}T06:30:00Z`);
      await e.dispatcher.drain();
      expect(e.gateway.received.size).toBe(0);
      e.clock.set(`${day}T06:30:00Z`);
      await e.dispatcher.drain();
      [m] = await e.messages(id);
      expect(m!.status).toBe("sent");
    });

    test("send_window added while messages are claimed: those not yet sent wait for the window", async () => {
      // The first send is held at the gateway until the PATCH has answered (however slow the machine).
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`, // 13:00 in Moscow
        gateway: { latencyMs: 150, hold: () => held },
        dispatcher: { concurrency: 1, claimBatch: 10 },
      });
      for (let i = 0; i < 3; i++) await client(`7910123456${i}`, "Europe/Moscow");
      const id = await mailing({ start_time: `${day}T12:00:00`, end_time: `${day}T23:00:00` });
      const ticking = e.dispatcher.tick();
      for (let i = 0; i < 100 && e.gateway.received.size === 0; i++) await Bun.sleep(5);
      expect(e.gateway.received.size).toBe(1); // one has left; two are claimed and queued
      const patched = await e.request("PATCH", `/api/v1/mailings/${id}`, { send_window: { from: "15:00", to: "18:00" } });
      expect(patched.status).toBe(200);
      release();
      await ticking;
      await e.dispatcher.drain();
      expect(e.gateway.received.size).toBe(1);
      const waiting = (await e.messages(id)).filter((m) => m.status !== "sent");
      expect(waiting).toHaveLength(2);
      for (const m of waiting) expect(m.next_attempt_at).toBe(`${day}T12:00:00Z`); // 15:00 in Moscow
      e.clock.set(`${day}T12:00:00Z`);
      await e.dispatcher.drain();
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sent", "sent", "sent"]);
    });

    test("pause holds every message; resume sends at once", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await client("79101234567");
      await client("79101234568");
      const id = await mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      expect((await e.request("POST", `/api/v1/mailings/${id}/pause`)).body.status).toBe("paused");
      e.clock.set(`${day}T12:00:00Z`);
      await e.dispatcher.drain();
      expect(e.gateway.received.size).toBe(0);
      expect((await e.request("POST", `/api/v1/mailings/${id}/resume`)).body.status).toBe("running");
      await e.dispatcher.drain();
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sent", "sent"]);
    });

    test("a paused mailing's window still ends on time", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await client("79101234567");
      const id = await mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T12:00:00` });
      await e.request("POST", `/api/v1/mailings/${id}/pause`);
      e.clock.set(`${day}T12:00:00Z`);
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("expired");
    });

    test("a mailing created due now is sent without waiting for a tick (in-process wake)", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await client("79101234567");
      await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      for (let i = 0; i < 100 && e.gateway.received.size === 0; i++) await Bun.sleep(20);
      expect(e.gateway.received.size).toBe(1);
    });

    test("cancel while sends are claimed: nothing more leaves; the send already at the gateway records `sent`, the rest `cancelled`", async () => {
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`,
        gateway: { latencyMs: 150 },
        dispatcher: { concurrency: 1, claimBatch: 10 },
      });
      for (let i = 0; i < 5; i++) await client(`7910123456${i}`);
      const id = await mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      for (let i = 0; i < 100 && e.gateway.received.size === 0; i++) await Bun.sleep(5);
      expect(e.gateway.received.size).toBe(1); // one send has left, four are claimed and queued
      expect((await e.request("POST", `/api/v1/mailings/${id}/cancel`)).body.status).toBe("cancelled");
      await ticking;
      await e.dispatcher.idle();
      expect(e.gateway.received.size).toBe(1);
      const rows = await e.messages(id);
      // SPEC §4: only messages never handed to the gateway become `cancelled`.
      expect(rows.map((m) => m.status).sort()).toEqual(["cancelled", "cancelled", "cancelled", "cancelled", "sent"]);
      expect(rows.find((m) => m.status === "sent")!.id).toBe([...e.gateway.received.keys()][0]!);
      const stats = await e.request("GET", "/api/v1/stats");
      expect(stats.body.messages).toMatchObject({ sent: 1, sending: 0, scheduled: 0 });
    });

    test("delete while a send is claimed: the mailing and its messages are gone and nothing more is sent", async () => {
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`,
        gateway: { latencyMs: 150 },
        dispatcher: { concurrency: 1, claimBatch: 10 },
      });
      for (let i = 0; i < 3; i++) await client(`7910123456${i}`);
      const id = await mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      for (let i = 0; i < 100 && e.gateway.received.size === 0; i++) await Bun.sleep(5);
      expect((await e.request("DELETE", `/api/v1/mailings/${id}`)).status).toBe(204);
      await ticking;
      await e.dispatcher.idle();
      expect(e.gateway.received.size).toBe(1);
      expect(await e.messages()).toHaveLength(0);
      expect((await e.request("GET", `/api/v1/stats/${id}`)).status).toBe(404);
    });

    test("an expired lease is taken over and the late result of the first claim is ignored", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await client("79101234567");
      const id = await mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain(); // let the wake-up from creation finish before time moves
      e.clock.set(`${day}T11:00:00Z`);
      const { claimDue } = await import("../../src/dispatch/claim");
      const { completeBatch } = await import("../../src/dispatch/complete");
      const [first] = await claimDue(e.database.db, e.clock.now(), 10, 60);
      expect(await claimDue(e.database.db, e.clock.now(), 10, 60)).toHaveLength(0); // leased
      e.clock.advance(61);
      const [second] = await claimDue(e.database.db, e.clock.now(), 10, 60);
      expect(second!.id).toBe(first!.id);
      expect(second!.attempts).toBe(2);
      expect(await completeBatch(e.database.db, [{ id: first!.id, attempts: first!.attempts, status: "failed", lastError: "late" }], e.clock.now())).toBe(0);
      expect(await completeBatch(e.database.db, [{ id: second!.id, attempts: second!.attempts, status: "sent" }], e.clock.now())).toBe(1);
      expect((await e.messages(id))[0]!.status).toBe("sent");
    });

    test("GATEWAY_CONCURRENCY caps the HTTP requests at once below SEND_CONCURRENCY; SEND_CONCURRENCY alone is the cap otherwise", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { latencyMs: 30 }, dispatcher: { concurrency: 8, gatewayConcurrency: 3 } });
      for (let i = 0; i < 24; i++) await client(`7910000${String(i).padStart(4, "0")}`);
      const first = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      expect((await e.messages(first)).map((m) => m.status)).toEqual(Array(24).fill("sent"));
      expect(e.gateway.received.size).toBe(24);
      expect(e.gateway.maxInFlight).toBe(3);
      await e.close();

      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { latencyMs: 30 }, dispatcher: { concurrency: 8 } });
      for (let i = 0; i < 24; i++) await client(`7910000${String(i).padStart(4, "0")}`);
      const second = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      expect((await e.messages(second)).map((m) => m.status)).toEqual(Array(24).fill("sent"));
      expect(e.gateway.maxInFlight).toBe(8);
    });

    test("a message that waited for a gateway request until its lease could not cover a send is handed back, not sent", async () => {
      // Lease 60 s, sends time out after 2 s: a send needs 2 s + 5 s (result write) of lease left.
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`,
        gateway: { latencyMs: 300 },
        dispatcher: { concurrency: 4, gatewayConcurrency: 1, leaseSeconds: 60, sendTimeoutMs: 2000 },
      });
      for (let i = 0; i < 3; i++) await client(`7910000${String(i).padStart(4, "0")}`);
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` }); // wakes the dispatcher
      for (const started = Date.now(); e.gateway.received.size === 0 && Date.now() - started < 10_000; ) await Bun.sleep(5);
      // One request is under way; two slots wait for it. 54 s pass: 6 s of lease left, less than 7 s.
      e.clock.advance(54);
      await e.dispatcher.idle();
      expect(e.gateway.received.size).toBe(1);
      const rows = await e.messages(id);
      expect(rows.map((m) => m.status).sort()).toEqual(["scheduled", "scheduled", "sent"]);
      for (const m of rows.filter((r) => r.status === "scheduled")) {
        expect(m.attempts).toBe(0); // the claim is undone
        expect(m.next_attempt_at).toBe(`${day}T10:00:54Z`); // due again at once, with a new lease
      }
      expect(e.logger.lines.filter((l) => l.msg === "claim lapsed before sending")).toHaveLength(2);
      await e.dispatcher.drain();
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sent", "sent", "sent"]);
      expect(e.gateway.received.size).toBe(3);
    });

    test("stopping while slots wait for a gateway request: only the requests under way are sent, the rest handed back", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { latencyMs: 300 }, dispatcher: { concurrency: 8, gatewayConcurrency: 2 } });
      for (let i = 0; i < 10; i++) await client(`7910000${String(i).padStart(4, "0")}`);
      const id = await mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` }); // wakes the dispatcher
      // The first request has reached the gateway: both requests are under way, six slots wait.
      for (const started = Date.now(); e.gateway.received.size === 0 && Date.now() - started < 10_000; ) await Bun.sleep(5);
      await e.dispatcher.stop(5000);
      expect(e.gateway.received.size).toBe(2);
      const statuses = (await e.messages(id)).map((m) => m.status).sort();
      expect(statuses).toEqual([...Array(8).fill("scheduled"), ...Array(2).fill("sent")]);
    });
  });
}
