/** Issue 15 item 5: the opt-out blocklist (API, planning, the check before a send, Twilio STOP). */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { checkClaims, claimDue } from "../../src/dispatch/claim";
import { twilioSignature } from "../../src/webhooks/receipts";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";
import { auth, testApp, type TestApp } from "../support/app";
import { expectProblem } from "./expect-problem";

setDefaultTimeout(60_000);

const day = "2026-12-01";
// Due at 11:00 (clients in UTC) while the clock says 10:00: creating it sends nothing yet.
const window = { start_time: `${day}T11:00:00`, end_time: `${day}T21:00:00` };

for (const backend of backends()) {
  describe(`[${backend}] opt-out blocklist`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("a blocked phone's messages are planned cancelled with the reason and never sent; unblocking plans them again", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.client("79101234567");
      await e.client("79101234568");
      const blocked = await e.request("POST", "/api/v1/blocklist", { phone_number: "+7 (910) 123-45-68", reason: "asked by phone" });
      expect(blocked.status).toBe(201);
      expect(blocked.body).toMatchObject({ phone_number: "79101234568", reason: "asked by phone" });
      expect((await e.request("POST", "/api/v1/blocklist", { phone_number: "79101234568" })).status).toBe(200);
      const id = await e.mailing(window);
      await e.dispatcher.drain(); // the tick the creation woke claims nothing at 10:00
      const planned = (await e.messages(id)).sort((a, b) => a.phone_number.localeCompare(b.phone_number));
      expect(planned.map((m) => [m.phone_number, m.status, m.last_error])).toEqual([
        ["79101234567", "scheduled", null],
        ["79101234568", "cancelled", "opted out (blocklist)"],
      ]);
      e.clock.set(`${day}T11:00:00Z`);
      await e.dispatcher.drain();
      expect(e.gateway.bodies.map((b) => String(b.phone))).toEqual(["79101234567"]);
      const stats = await e.request("GET", `/api/v1/stats/${id}`);
      expect(stats.body.total).toBe(1);

      expect((await e.request("DELETE", "/api/v1/blocklist/79101234568")).status).toBe(204);
      expect((await e.messages(id)).map((m) => [m.phone_number, m.status]).sort()).toEqual([["79101234567", "sent"], ["79101234568", "scheduled"]]);
      await e.dispatcher.drain();
      expect(e.gateway.bodies.map((b) => String(b.phone)).sort()).toEqual(["79101234567", "79101234568"]);
      expect(e.logger.lines.filter((l) => l.msg === "blocklist").map((l) => [l.action, l.phone, l.actor])).toEqual([
        ["block", "…4568", "admin-key"],
        ["unblock", "…4568", "admin-key"],
      ]);
      // …and both are in the audit log (issue 15: every block and unblock).
      const audit = await e.request("GET", "/api/v1/audit?limit=10");
      expect(audit.body.items.map((a: { kind: string; target: string; detail: { actor: string } }) => [a.kind, a.target, a.detail.actor])).toEqual([
        ["blocklist.removed", "phone:…4568", "admin-key"],
        ["blocklist.added", "phone:…4568", "admin-key"],
      ]);
    });

    test("a phone blocked while the mailing runs gets nothing more: waiting messages cancelled, a claimed one fails its check", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.client("79101234567");
      await e.client("79101234568");
      const id = await e.mailing(window);
      await e.dispatcher.drain(); // the tick the creation woke claims nothing at 10:00
      e.clock.set(`${day}T11:00:00Z`);
      const claimed = await claimDue(e.database.db, e.clock.now(), 1, 60);
      expect(claimed).toHaveLength(1);
      const other = claimed[0]!.phone === "79101234567" ? "79101234568" : "79101234567";
      await e.request("POST", "/api/v1/blocklist", { phone_number: claimed[0]!.phone });
      await e.request("POST", "/api/v1/blocklist", { phone_number: other });
      expect((await checkClaims(e.database.db, claimed)).get(claimed[0]!.id)?.clientMatches).toBe(false);
      expect((await e.messages(id)).find((m) => m.phone_number === other)).toMatchObject({ status: "cancelled", last_error: "opted out (blocklist)" });
      await e.dispatcher.drain();
      expect(e.gateway.bodies).toEqual([]);
    });

    test("a phone blocked while its claimed message's pre-send read is still fresh is not sent: the block makes that read stale", async () => {
      // Reads stay usable for a minute here, so only the block's signal can make the claim's read stale.
      // The first send takes 3 s at the gateway: the block lands while the second waits for the slot.
      e = await testEngine(backend, { now: `${day}T10:00:00Z`, gateway: { latencyMs: 3000 }, gatewayTimeoutMs: 10_000, dispatcher: { concurrency: 1, claimBatch: 10, checkMaxAgeMs: 60_000 } });
      for (const phone of ["79101234560", "79101234561"]) await e.client(phone);
      const id = await e.mailing(window);
      e.clock.set(`${day}T11:00:00Z`);
      const ticking = e.dispatcher.tick();
      for (const started = Date.now(); e.gateway.received.size === 0; await Bun.sleep(5)) {
        if (Date.now() - started > 10_000) throw new Error("timed out waiting for the first send");
      }
      const first = [...e.gateway.received.keys()][0]!;
      const waiting = (await e.messages(id)).find((m) => m.id !== first)!;
      expect(waiting.status).toBe("sending"); // claimed, its check read, waiting for the slot
      expect((await e.request("POST", "/api/v1/blocklist", { phone_number: waiting.phone_number })).status).toBe(201);
      await ticking;
      await e.dispatcher.drain();
      expect([...e.gateway.received.keys()]).toEqual([first]);
      expect((await e.messages(id)).find((m) => m.id === waiting.id)!.status).toBe("cancelled");
    });

    test("blocking keeps the history: a message that already expired stays `expired`, unblocking leaves it so", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      // 11:00–12:00 in Vladivostok (UTC+10) was 01:00–02:00 UTC: over when the mailing is created at 10:00 UTC,
      // so that client's message is planned `expired` at once (SPEC §4); the UTC client's waits for 11:00.
      await e.client("79101234567", "Asia/Vladivostok");
      await e.client("79101234568");
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T12:00:00` });
      await e.dispatcher.drain();
      const status = async () => Object.fromEntries((await e.messages(id)).map((m) => [m.phone_number, [m.status, m.last_error]]));
      expect(await status()).toEqual({ "79101234567": ["expired", null], "79101234568": ["scheduled", null] });
      const countsBefore = (await e.request("GET", `/api/v1/stats/${id}`)).body.by_status;

      for (const phone of ["79101234567", "79101234568"]) expect((await e.request("POST", "/api/v1/blocklist", { phone_number: phone })).status).toBe(201);
      // The waiting message is cancelled by the block; the one that missed its window keeps saying so.
      expect(await status()).toEqual({ "79101234567": ["expired", null], "79101234568": ["cancelled", "opted out (blocklist)"] });
      // Cancelled messages are not counted (SPEC §5): the waiting one leaves the statistics, the expired one stays.
      expect(countsBefore).toMatchObject({ expired: 1, scheduled: 1 });
      expect((await e.request("GET", `/api/v1/stats/${id}`)).body.by_status).toEqual({ ...countsBefore, scheduled: 0 });

      for (const phone of ["79101234567", "79101234568"]) expect((await e.request("DELETE", `/api/v1/blocklist/${phone}`)).status).toBe(204);
      expect(await status()).toEqual({ "79101234567": ["expired", null], "79101234568": ["scheduled", null] });
    });

    test("a re-plan (the mailing's text edited, paused and resumed; the client edited) leaves a blocked phone's expired message expired", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      // As above: Vladivostok's 11:00–12:00 was over at 10:00 UTC (expired at once); the UTC client waits.
      const late = await e.client("79101234567", "Asia/Vladivostok");
      await e.client("79101234568");
      const id = await e.mailing({ start_time: `${day}T11:00:00`, end_time: `${day}T12:00:00` });
      await e.dispatcher.drain();
      for (const phone of ["79101234567", "79101234568"]) expect((await e.request("POST", "/api/v1/blocklist", { phone_number: phone })).status).toBe(201);
      const status = async () => Object.fromEntries((await e.messages(id)).map((m) => [m.phone_number, [m.status, m.last_error]]));
      const blocked = { "79101234567": ["expired", null], "79101234568": ["cancelled", "opted out (blocklist)"] };
      expect(await status()).toEqual(blocked);
      const counts = (await e.request("GET", `/api/v1/stats/${id}`)).body.by_status;
      expect(counts).toMatchObject({ expired: 1 });

      expect((await e.request("PATCH", `/api/v1/mailings/${id}`, { text: "hello again" })).status).toBe(200);
      expect(await status()).toEqual(blocked);
      expect((await e.request("POST", `/api/v1/mailings/${id}/pause`)).status).toBe(200);
      expect((await e.request("POST", `/api/v1/mailings/${id}/resume`)).status).toBe(200);
      expect(await status()).toEqual(blocked);
      expect((await e.request("PATCH", `/api/v1/clients/${late}`, { tag: "vip" })).status).toBe(200);
      expect(await status()).toEqual(blocked);
      expect((await e.request("GET", `/api/v1/stats/${id}`)).body.by_status).toEqual(counts);
    });

    test("CSV import reports bad rows; the export imports again", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      const csv = "phone_number,reason\n+7 910 123-45-67,complained\n12,x\n89101234568,\n79101234567,again\n";
      const r = await e.request("POST", "/api/v1/blocklist/import", csv, { ...auth, "content-type": "text/csv" });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ rows: 4, blocked: 2, already: 1, failed: 1, errors: [{ line: 3, field: "phone_number", message: expect.any(String) }] });
      const exported = await e.request("GET", "/api/v1/blocklist/export");
      expect(exported.headers.get("content-type")).toStartWith("text/csv");
      const lines = exported.text.trimEnd().split("\r\n");
      expect(lines[0]).toBe("phone_number,reason,created_at");
      expect(lines.slice(1).map((l) => l.split(",").slice(0, 2).join(","))).toEqual(["79101234567,complained", "79101234568,"]);
      for (const phone of ["79101234567", "79101234568"]) await e.request("DELETE", `/api/v1/blocklist/${phone}`);
      const again = await e.request("POST", "/api/v1/blocklist/import", exported.text, { ...auth, "content-type": "text/csv" });
      expect(again.body).toMatchObject({ rows: 2, blocked: 2, failed: 0 });
      // A stray quote is a reported bad row, not a 500; the rows around it are read.
      const quoted = "phone_number,reason\n79101230001,ok\n79101230002,ab\"c\n79101230003,ok\n";
      const stray = await e.request("POST", "/api/v1/blocklist/import", quoted, { ...auth, "content-type": "text/csv" });
      expect(stray.status).toBe(200);
      expect(stray.body).toMatchObject({ rows: 3, blocked: 2, failed: 1, errors: [{ line: 3, field: "row" }] });
    });

    test("the list, and bad input", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      for (const phone of ["79101234569", "79101234567", "79101234568"]) await e.request("POST", "/api/v1/blocklist", { phone_number: phone });
      const page = await e.request("GET", "/api/v1/blocklist?limit=2");
      expect(page.body.items.map((b: { phone_number: string }) => b.phone_number)).toEqual(["79101234567", "79101234568"]);
      const next = await e.request("GET", `/api/v1/blocklist?limit=2&cursor=${page.body.next_cursor}`);
      expect(next.body).toMatchObject({ items: [{ phone_number: "79101234569" }], next_cursor: null });
      expectProblem(await e.request("POST", "/api/v1/blocklist", { phone_number: "12" }), 422, ["phone_number"]);
      expect((await e.request("DELETE", "/api/v1/blocklist/79990000000")).status).toBe(404);
      expect((await e.request("GET", "/api/v1/blocklist", undefined, {})).status).toBe(401);
    });
  });

  describe(`[${backend}] inbound STOP through Twilio`, () => {
    let t: TestApp;
    afterEach(() => t?.close());

    test("a signed inbound STOP puts the sender on the blocklist; an unsigned one does not", async () => {
      const authToken = "twilio-auth-token";
      t = await testApp(backend, {
        config: { provider: { name: "twilio", accountSid: `AC${"0".repeat(32)}`, authToken, from: "+15005550006" }, publicUrl: "https://notify.example" },
      });
      const fields = new URLSearchParams({ MessageSid: "SMx", From: "+79101234567", To: "+15005550006", Body: " Stop " });
      const form = { "content-type": "application/x-www-form-urlencoded" };
      expect((await t.request("POST", "/webhooks/twilio", fields.toString(), { ...form, "x-twilio-signature": "bad" })).status).toBe(403);
      expect((await t.request("GET", "/api/v1/blocklist")).body.items).toEqual([]);
      const signature = twilioSignature(authToken, "https://notify.example/webhooks/twilio", fields);
      expect((await t.request("POST", "/webhooks/twilio", fields.toString(), { ...form, "x-twilio-signature": signature })).status).toBe(204);
      expect((await t.request("GET", "/api/v1/blocklist")).body.items).toMatchObject([{ phone_number: "79101234567", reason: "replied STOP (Twilio)" }]);
    });
  });

  describe(`[${backend}] inbound STOP through SMSC.ru`, () => {
    let t: TestApp;
    afterEach(() => t?.close());

    test("a reply of STOP at the secret path puts the sender on the blocklist (audited); other replies and a wrong token do not", async () => {
      const token = "hook-secret-0123456789";
      t = await testApp(backend, { config: { provider: { name: "smsc", login: "shop", password: "pa55" } as never, webhookToken: token } });
      const form = { "content-type": "application/x-www-form-urlencoded" };
      const reply = (phone: string, mes: string) => new URLSearchParams({ id: "77", phone, mes, to: "79990001122", sent: "1764583200", time: "1764583200" }).toString();
      expect((await t.request("POST", "/webhooks/smsc/wrong-token-0123456789", reply("79101234567", "STOP"), form)).status).toBe(404);
      const hello = await t.request("POST", `/webhooks/smsc/${token}`, reply("79101234568", "hello, when is the sale?"), form);
      expect([hello.status, hello.text]).toEqual([200, "OK"]);
      expect((await t.request("GET", "/api/v1/blocklist")).body.items).toEqual([]);
      const stop = await t.request("POST", `/webhooks/smsc/${token}`, reply("+79101234567", " Стоп "), form);
      expect([stop.status, stop.text]).toEqual([200, "OK"]);
      expect((await t.request("GET", "/api/v1/blocklist")).body.items).toMatchObject([{ phone_number: "79101234567", reason: "replied STOP (SMSC.ru)" }]);
      const audit = await t.request("GET", "/api/v1/audit?kind=blocklist.added");
      expect(audit.status).toBe(200);
      expect(JSON.stringify(audit.body)).toContain('"actor":"smsc"');
    });
  });
}
