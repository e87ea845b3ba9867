/**
 * SPEC §3, §4, §6: what happens to a message that is already claimed (status `sending`) when its
 * client or mailing changes, when the database fails, and what the dispatcher counts.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";
import { type FaultControl, faultyDatabase } from "../support/faulty-db";

// Integration tests start databases and gateways on a shared 2-core machine; Bun's 5 s default is short.
setDefaultTimeout(60_000);

const day = "2026-12-01";

/** Waits (polling, bounded) until `ready()` holds; fails the test if it never does. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !ready(); await Bun.sleep(5)) {
    if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
  }
}

for (const backend of backends()) {
  describe(`[${backend}] §3/§4 a claimed message whose client or mailing changes`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    /**
     * One slot and a gateway taking 150 ms: the first message is at the gateway while the others
     * are claimed and wait for the slot. Returns the mailing and which message went first.
     */
    async function oneAtTheGateway(clients: { phone: string; tag?: string }[], mailing: Record<string, unknown> = {}) {
      // The first send is held at the gateway until the test has made its change (release), so the
      // change lands while the other message waits for the slot, however slow the machine is.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { latencyMs: 150, hold: () => held }, dispatcher: { concurrency: 1, claimBatch: 10 } });
      for (const c of clients) await e.client(c.phone, "UTC", c.tag ?? "");
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00`, ...mailing });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      await until(() => e.gateway.received.size === 1, "the first send");
      const first = [...e.gateway.received.keys()][0]!;
      const rows = await e.messages(id);
      const waiting = rows.filter((m) => m.id !== first);
      expect(waiting.map((m) => m.status)).toEqual(waiting.map(() => "sending")); // claimed, waiting for the slot
      return { id, first, waiting, ticking, release };
    }

    test("a client deleted while its message waits for a send slot is never sent; the message ends `cancelled`", async () => {
      const { id, first, waiting, ticking, release } = await oneAtTheGateway([{ phone: "79101234560" }, { phone: "79101234561" }]);
      expect((await e.request("DELETE", `/api/v1/clients/${waiting[0]!.client_id}`)).status).toBe(204);
      release();
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      const rows = await e.messages(id);
      expect(rows.find((m) => m.id === first)!.status).toBe("sent");
      expect(rows.find((m) => m.id === waiting[0]!.id)!.status).toBe("cancelled");
      const stats = await e.request("GET", `/api/v1/stats/${id}`);
      expect(stats.body.by_status).toMatchObject({ sent: 1, sending: 0, scheduled: 0 });
    });

    test("a message at the gateway is not read again: the pre-send re-reads cover only messages not yet decided", async () => {
      // Two slots; the first send is held at the gateway while the others are decided and sent.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const reads: number[][] = [];
      let readsBeforeFirstSend = -1;
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`,
        gateway: {
          latencyMs: 0,
          hold: () => {
            if (readsBeforeFirstSend >= 0) return Promise.resolve();
            readsBeforeFirstSend = reads.length;
            return held;
          },
        },
        // Every read is stale at once: each message asking for its check makes a read.
        dispatcher: { concurrency: 2, claimBatch: 10, checkMaxAgeMs: 0, onCheckRead: (ids) => reads.push(ids) },
      });
      for (const phone of ["79101234560", "79101234561", "79101234562", "79101234563"]) await e.client(phone, "UTC");
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      await until(() => e.gateway.received.size === 4, "every send at the gateway");
      const first = [...e.gateway.received.keys()][0]!;
      release();
      await ticking;
      await e.dispatcher.drain();
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sent", "sent", "sent", "sent"]);
      // The other messages were read while the first was at the gateway; none of those reads
      // covered it again (it was decided, and left the reads, before its send).
      const whileAtGateway = reads.slice(readsBeforeFirstSend);
      expect(whileAtGateway.length).toBeGreaterThan(0);
      expect(whileAtGateway.filter((ids) => ids.includes(first))).toEqual([]);
      expect(reads.slice(0, readsBeforeFirstSend).some((ids) => ids.includes(first))).toBe(true);
    });

    test("a client PATCHed out of the mailing's filter while its message is claimed is never sent", async () => {
      const { id, first, waiting, ticking, release } = await oneAtTheGateway(
        [{ phone: "79101234560", tag: "vip" }, { phone: "79101234561", tag: "vip" }],
        { tags_filter: ["vip"] },
      );
      expect((await e.request("PATCH", `/api/v1/clients/${waiting[0]!.client_id}`, { tag: "other" })).status).toBe(200);
      release();
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      expect((await e.messages(id)).find((m) => m.id === waiting[0]!.id)!.status).toBe("cancelled");
    });

    test("a mailing PATCHed to a filter the waiting client no longer matches: not sent", async () => {
      const { id, first, waiting, ticking, release } = await oneAtTheGateway([{ phone: "79101234560", tag: "a" }, { phone: "79101234561", tag: "a" }]);
      expect((await e.request("PATCH", `/api/v1/mailings/${id}`, { tags_filter: ["b"] })).status).toBe(200);
      release();
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      expect((await e.messages(id)).map((m) => m.status).sort()).toEqual(["cancelled", "sent"]);
    });

    test("a client deleted while its claimed message's pre-send read is still fresh is not sent: the delete makes that read stale", async () => {
      // Reads stay usable for a minute here, so only the delete's signal can make the claim's read stale.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { latencyMs: 150, hold: () => held }, dispatcher: { concurrency: 1, claimBatch: 10, checkMaxAgeMs: 60_000 } });
      for (const phone of ["79101234560", "79101234561"]) await e.client(phone);
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      await until(() => e.gateway.received.size === 1, "the first send");
      const first = [...e.gateway.received.keys()][0]!;
      const waiting = (await e.messages(id)).find((m) => m.id !== first)!;
      expect((await e.request("DELETE", `/api/v1/clients/${waiting.client_id}`)).status).toBe(204);
      release();
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      expect((await e.messages(id)).find((m) => m.id === waiting.id)!.status).toBe("cancelled");
    });

    test("a mailing PATCHed to start later while its message is claimed: not sent before the new start, and due then", async () => {
      const { id, first, waiting, ticking, release } = await oneAtTheGateway([{ phone: "79101234560" }, { phone: "79101234561" }]);
      expect((await e.request("PATCH", `/api/v1/mailings/${id}`, { start_time: `${day}T15:00:00` })).status).toBe(200);
      release();
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      const held = (await e.messages(id)).find((m) => m.id === waiting[0]!.id)!;
      expect(held).toMatchObject({ status: "scheduled", due_at: `${day}T15:00:00Z`, attempts: 0 });
      e.clock.set(`${day}T15:00:00Z`);
      await e.dispatcher.drain();
      expect(e.gateway.received.has(held.id)).toBe(true);
    });

    test("a mailing PATCHed to end earlier while its message is claimed: expired at the new end, not sent after it", async () => {
      const { id, first, waiting, ticking, release } = await oneAtTheGateway([{ phone: "79101234560" }, { phone: "79101234561" }]);
      expect((await e.request("PATCH", `/api/v1/mailings/${id}`, { end_time: `${day}T11:00:01` })).status).toBe(200);
      release();
      e.clock.set(`${day}T11:00:02Z`);
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      expect((await e.messages(id)).find((m) => m.id === waiting[0]!.id)!.status).toBe("expired");
    });

    test("a client deleted while the worker holding its message is dead: after the lease runs out it is not sent", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      const clientId = await e.client("79101234567");
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      e.clock.set(`${day}T11:00:00Z`);
      const { claimDue } = await import("../../src/dispatch/claim");
      expect(await claimDue(e.database.db, e.clock.now(), 10, 60)).toHaveLength(1); // a worker that then dies
      expect((await e.request("DELETE", `/api/v1/clients/${clientId}`)).status).toBe(204);
      e.clock.advance(61);
      await e.dispatcher.drain();
      expect(e.gateway.received.size).toBe(0);
      expect((await e.messages(id))[0]!.status).toBe("cancelled");
    });
  });

  describe(`[${backend}] §6 a message whose mailing row is gone`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("a due message left without its mailing (no foreign key) is cancelled, not sent", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      const clientId = await e.client("79101234567");
      const { sql } = await import("drizzle-orm");
      await e.database.rows(sql`
        insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
        values (424242, ${clientId}, '79101234567', 'scheduled', ${`${day}T09:00:00Z`}::timestamptz,
                ${`${day}T21:00:00Z`}::timestamptz, ${`${day}T09:00:00Z`}::timestamptz)`);
      await e.dispatcher.drain();
      expect(e.gateway.received.size).toBe(0);
      expect((await e.messages(424242))[0]!.status).toBe("cancelled");
    });
  });

  describe(`[${backend}] §6 the dispatcher when the database fails`, () => {
    let e: TestEngine;
    let control: FaultControl;
    afterEach(async () => {
      if (control) control.fails = () => false;
      await e?.close();
    });
    const faulty = (database: Parameters<typeof faultyDatabase>[0]) => {
      const view = faultyDatabase(database);
      control = view.control;
      return view.database;
    };

    test("a mailing re-read that fails (transient error) does not cancel the mailing's claimed messages", async () => {
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`,
        gateway: { latencyMs: 150 },
        dispatcher: { concurrency: 1, claimBatch: 10 },
        dispatcherDatabase: faulty,
      });
      for (let i = 0; i < 3; i++) await e.client(`7910123456${i}`);
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      await until(() => e.gateway.received.size === 1, "the first send");
      control.fails = (text) => /from mailings where id/.test(text);
      e.dispatcher.mailingChanged(id); // e.g. a PATCH of its text, signalled while the database hiccups
      await until(() => e.logger.lines.some((l) => l.msg === "mailing state refresh failed"), "the failed re-read");
      control.fails = () => false;
      await ticking;
      await e.dispatcher.drain();
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sent", "sent", "sent"]);
      expect(e.gateway.received.size).toBe(3);
    });

    test("stop() returns by its deadline while the database is unreachable; unwritten results are left to their leases", async () => {
      e = await testEngine(backend, {
        now: `${day}T10:00:00Z`,
        gateway: { latencyMs: 300 },
        dispatcher: { concurrency: 2 },
        dispatcherDatabase: faulty,
      });
      for (let i = 0; i < 2; i++) await e.client(`7910123456${i}`);
      const id = await e.mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` }); // wakes the dispatcher
      await until(() => e.gateway.received.size === 2, "both sends");
      control.fails = () => true; // the database goes away while both sends are at the gateway
      const stopped = e.dispatcher.stop(1500);
      const outcome = await Promise.race([stopped.then(() => "stopped"), Bun.sleep(8000).then(() => "still waiting")]);
      expect(outcome).toBe("stopped");
      control.fails = () => false;
      // Nothing was written: both rows are still `sending`, and their leases return them to a worker.
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sending", "sending"]);
      expect(e.logger.lines.some((l) => l.msg === "writing results failed; retrying")).toBe(true);
    });

    test("idle() called right as the last result is written still resolves", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, dispatcher: { concurrency: 2 }, dispatcherDatabase: faulty });
      const idles: Promise<void>[] = [];
      // After each group commit, call idle() at every microtask for a while: one of them lands
      // between the last slot's release and the end of the write.
      control.watch = (text) => /update messages m\s+set status = r\.status/.test(text);
      control.after = () => {
        let depth = 0;
        const again = () => {
          idles.push(e.dispatcher.idle());
          if (++depth < 60) queueMicrotask(again);
        };
        queueMicrotask(again);
      };
      for (let i = 0; i < 3; i++) await e.client(`7910123456${i}`);
      await e.mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      expect(idles.length).toBeGreaterThan(0);
      const outcome = await Promise.race([Promise.all(idles).then(() => "all resolved"), Bun.sleep(3000).then(() => "one hangs")]);
      expect(outcome).toBe("all resolved");
    });
  });

  describe(`[${backend}] §6 outcome counters and hand-backs`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("a message whose send window will not open again before its end is counted as expired", async () => {
      e = await testEngine(backend, { now: `${day}T08:00:00Z` });
      await e.client("79101234567");
      const id = await e.mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T12:00:00`, send_window: { from: "09:00", to: "11:00" } });
      e.clock.set(`${day}T11:30:00Z`); // due since 09:00, window closed, reopens tomorrow: after the end
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("expired");
      expect(e.gateway.received.size).toBe(0);
      expect(e.dispatcher.stats).toMatchObject({ sent: 0, expired: 1 });
    });

    test("a retry that would land after the end is counted (and logged) as expired, not as a retry", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { failRate: 1 } });
      await e.client("79101234567");
      const id = await e.mailing({ start_time: `${day}T09:00:00`, end_time: `${day}T10:02:00` }); // retry delay 300 s
      await e.dispatcher.drain();
      expect((await e.messages(id))[0]!.status).toBe("expired");
      expect(e.dispatcher.stats).toMatchObject({ retried: 0, expired: 1 });
      expect(e.logger.lines.filter((l) => l.msg === "send").map((l) => l.outcome)).toEqual(["expired"]);
    });

    test("a message taken over after a lease ran out and handed back unsent stays `scheduled` when no send failed", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.client("79101234567");
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` });
      await e.dispatcher.drain();
      e.clock.set(`${day}T11:00:00Z`);
      const { claimDue } = await import("../../src/dispatch/claim");
      expect(await claimDue(e.database.db, e.clock.now(), 10, 60)).toHaveLength(1); // a worker that then dies
      expect((await e.request("POST", `/api/v1/mailings/${id}/pause`)).status).toBe(200);
      e.clock.advance(61);
      await e.dispatcher.drain(); // takes it over, finds the mailing paused, hands it back
      const [m] = await e.messages(id);
      expect(m!.status).toBe("scheduled");
      expect(m!.next_attempt_at).toBe("infinity");
      expect(e.gateway.received.size).toBe(0);
    });
  });
}
