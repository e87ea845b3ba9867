/**
 * Truthful outcomes (issue 14 item 4, SPEC §4): a send already handed to the gateway records what
 * really happened, whatever changed meanwhile. dispatch.test.ts covers a cancelled mailing with a
 * send that succeeds; these cover the client that stops matching its mailing's filter and a
 * cancelled mailing whose in-flight send fails.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

setDefaultTimeout(60_000);
const day = "2026-12-01";

for (const backend of backends()) {
  describe(`[${backend}] §4 truthful outcomes of sends in flight`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    async function inFlight(gateway: { latencyMs: number; failRate?: number }, tag = "") {
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway, dispatcher: { concurrency: 1, claimBatch: 10 } });
      const clientId = await e.client("79101234560", "UTC", tag);
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00`, ...(tag ? { tags_filter: [tag] } : {}) });
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      for (let i = 0; i < 200 && e.gateway.received.size === 0; i++) await Bun.sleep(5);
      expect(e.gateway.received.size).toBe(1);
      return { id, clientId, ticking };
    }

    test("the client stops matching (its tag changes) while its send is at the gateway: `sent`, and counted sent", async () => {
      const { id, clientId, ticking } = await inFlight({ latencyMs: 200 }, "vip");
      expect((await e.request("PATCH", `/api/v1/clients/${clientId}`, { tag: "other" })).status).toBe(200);
      await ticking;
      await e.dispatcher.idle();
      expect((await e.messages(id)).map((m) => m.status)).toEqual(["sent"]);
      expect((await e.request("GET", "/api/v1/stats")).body.messages).toMatchObject({ sent: 1 });
    });

    test("the mailing is cancelled while its send is at the gateway and the gateway answers 503: not `cancelled`", async () => {
      const { id, ticking } = await inFlight({ latencyMs: 200, failRate: 1 });
      expect((await e.request("POST", `/api/v1/mailings/${id}/cancel`)).status).toBe(200);
      await ticking;
      await e.dispatcher.idle();
      const [row] = await e.messages(id);
      expect(row!.status).not.toBe("cancelled");
      expect(["retrying", "failed"]).toContain(row!.status);
      expect(row!.attempts).toBe(1);
    });
  });
}
