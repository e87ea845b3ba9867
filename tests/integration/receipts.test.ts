/**
 * Issue 15 item 2: delivery receipts at POST /webhooks/{provider} move a `sent` message to
 * `delivered` or `undelivered`; Twilio's are signed, SMS.ru's and SMSC's come to a secret path.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { Dispatcher } from "../../src/dispatch/dispatcher";
import type { Gateway } from "../../src/gateway/gateway";
import { SmsRuGateway } from "../../src/gateway/smsru";
import { SmscGateway } from "../../src/gateway/smsc";
import { TwilioGateway } from "../../src/gateway/twilio";
import { twilioSignature } from "../../src/webhooks/receipts";
import { type TestApp, testApp } from "../support/app";
import { backends } from "../support/db";
import { type FakeProvider, startFakeSmsc, startFakeSmsRu, startFakeTwilio } from "../support/provider-fakes";

setDefaultTimeout(60_000);

const day = "2026-12-01";
const sid = `AC${"ab".repeat(16)}`;
const authToken = "twilio-auth-token";
const webhookToken = "hook-secret-0123456789";
const publicUrl = "https://notify.example";
const form = { "content-type": "application/x-www-form-urlencoded" };

for (const backend of backends()) {
  describe(`[${backend}] delivery receipts`, () => {
    let t: TestApp;
    let fake: FakeProvider;
    let dispatcher: Dispatcher;
    afterEach(async () => {
      await dispatcher?.stop(1000);
      await fake?.stop();
      await t?.close();
    });

    async function setUp(gateway: (url: string) => Gateway, start: () => FakeProvider, provider: Record<string, string>) {
      fake = start();
      t = await testApp(backend, {
        now: `${day}T10:00:00Z`,
        config: { provider: provider as never, webhookToken, publicUrl },
      });
      dispatcher = new Dispatcher(t.database, gateway(fake.url), t.clock, t.logger, {
        concurrency: 5, claimBatch: 10, leaseSeconds: 60, retryDelaySeconds: 300, tick: null,
      });
      for (const phone of ["79101234567", "79101234568"]) expect((await t.request("POST", "/api/v1/clients", { phone_number: phone })).status).toBe(201);
      const mailing = await t.request("POST", "/api/v1/mailings", { text: "hello", start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      expect(mailing.status).toBe(201);
      return mailing.body.id as number;
    }

    const rows = () =>
      t.database.rows<{ id: number; status: string; last_error: string | null; provider_message_id: string | null }>(
        sql`select id, status, last_error, provider_message_id from messages order by id`,
      );

    const twilio = () => setUp(
      (url) => new TwilioGateway({ accountSid: sid, authToken, from: "+15005550006", statusCallback: `${publicUrl}/webhooks/twilio`, baseUrl: url, timeoutMs: 2000 }),
      () => startFakeTwilio(sid, authToken),
      { name: "twilio", accountSid: sid, authToken, from: "+15005550006" },
    );

    function twilioCallback(fields: Record<string, string>, signature?: string) {
      const params = new URLSearchParams(fields);
      const sign = signature ?? twilioSignature(authToken, `${publicUrl}/webhooks/twilio`, params);
      return t.request("POST", "/webhooks/twilio", params.toString(), { ...form, "x-twilio-signature": sign });
    }

    test("Twilio: a signed receipt moves sent → delivered / undelivered with the reason; stats and replays", async () => {
      const mailingId = await twilio();
      await dispatcher.drain();
      const [a, b] = await rows();
      expect(a!.status).toBe("sent");
      expect(a!.provider_message_id).toMatch(/^twilio:SM[0-9a-f]{32}$/);
      const sidOf = (row: typeof a) => row!.provider_message_id!.slice("twilio:".length);

      expect((await twilioCallback({ MessageSid: sidOf(a), MessageStatus: "delivered", AccountSid: sid })).status).toBe(204);
      expect((await twilioCallback({ MessageSid: sidOf(b), MessageStatus: "undelivered", ErrorCode: "30003", AccountSid: sid })).status).toBe(204);
      // A replay, and a late intermediate status, change nothing.
      await twilioCallback({ MessageSid: sidOf(a), MessageStatus: "undelivered", ErrorCode: "30005" });
      await twilioCallback({ MessageSid: sidOf(b), MessageStatus: "sent" });
      const [a2, b2] = await rows();
      expect(a2).toMatchObject({ status: "delivered", last_error: null });
      expect(b2).toMatchObject({ status: "undelivered", last_error: "Twilio undelivered (error 30003)" });

      const stats = await t.request("GET", `/api/v1/stats/${mailingId}`);
      // `sent` counts every message the gateway accepted; delivered/undelivered are the receipts.
      expect(stats.body.by_status).toEqual({ scheduled: 0, sending: 0, sent: 2, retrying: 0, failed: 0, expired: 0, delivered: 1, undelivered: 1 });
      expect(stats.body.total).toBe(2);
      expect((await t.request("GET", "/api/v1/stats")).body.messages).toMatchObject({ sent: 2, delivered: 1, undelivered: 1 });
      const listed = await t.request("GET", `/api/v1/stats/${mailingId}?status=undelivered`);
      expect(listed.body.messages.map((m: { id: number }) => m.id)).toEqual([b!.id]);
      // The provider's id is in the API answers and the export, so an operator can look a send up there.
      expect(listed.body.messages[0].provider_message_id).toBe(b!.provider_message_id);
      const page = await t.request("GET", `/api/v1/mailings/${mailingId}/messages`);
      expect(page.body.items.map((m: { provider_message_id: string | null }) => m.provider_message_id)).toEqual([a!.provider_message_id, b!.provider_message_id]);
      const csv = (await t.request("GET", `/api/v1/mailings/${mailingId}/messages/export?status=delivered`)).text.trimEnd().split("\r\n");
      expect(csv[1]!.endsWith(`,${a!.provider_message_id}`)).toBe(true);
    });

    test("Twilio: a bad or missing signature is refused and changes nothing; an unknown sid changes nothing", async () => {
      await twilio();
      await dispatcher.drain();
      const [a] = await rows();
      const sidOf = a!.provider_message_id!.slice("twilio:".length);
      expect((await twilioCallback({ MessageSid: sidOf, MessageStatus: "delivered" }, "AAAA")).status).toBe(403);
      const unsigned = await t.request("POST", "/webhooks/twilio", `MessageSid=${sidOf}&MessageStatus=delivered`, form);
      expect(unsigned.status).toBe(403);
      // Signed for other fields than those sent.
      const signature = twilioSignature(authToken, `${publicUrl}/webhooks/twilio`, new URLSearchParams({ MessageSid: "SMother", MessageStatus: "delivered" }));
      expect((await twilioCallback({ MessageSid: sidOf, MessageStatus: "delivered" }, signature)).status).toBe(403);
      expect((await twilioCallback({ MessageSid: `SM${"9".repeat(32)}`, MessageStatus: "delivered" })).status).toBe(204);
      expect((await rows()).map((r) => r.status)).toEqual(["sent", "sent"]);
    });

    test("Twilio: the signature covers the URL's query string, as Twilio signs it, behind PUBLIC_URL too", async () => {
      await twilio();
      await dispatcher.drain();
      const [a] = await rows();
      const fields = new URLSearchParams({ MessageSid: a!.provider_message_id!.slice("twilio:".length), MessageStatus: "delivered" });
      const path = "/webhooks/twilio?source=status&n=1";
      // Signed without the query: not what Twilio signed for this URL.
      const withoutQuery = twilioSignature(authToken, `${publicUrl}/webhooks/twilio`, fields);
      expect((await t.request("POST", path, fields.toString(), { ...form, "x-twilio-signature": withoutQuery })).status).toBe(403);
      expect((await rows())[0]!.status).toBe("sent");
      const signed = twilioSignature(authToken, `${publicUrl}${path}`, fields);
      expect((await t.request("POST", path, fields.toString(), { ...form, "x-twilio-signature": signed })).status).toBe(204);
      expect((await rows())[0]!.status).toBe("delivered");
    });

    test("a receipt that arrives before the send's result is written is applied once the result lands", async () => {
      let inner: TwilioGateway;
      let early = 0;
      // The receipt reaches us while the send is still in flight: its result is not written yet.
      const racing: (url: string) => Gateway = (url) => {
        inner = new TwilioGateway({ accountSid: sid, authToken, from: "+15005550006", statusCallback: null, baseUrl: url, timeoutMs: 2000 });
        return {
          name: "twilio",
          async send(message, signal) {
            const result = await inner.send(message, signal);
            if (result.outcome === "sent") {
              const reply = await twilioCallback({ MessageSid: result.providerId!, MessageStatus: "delivered" });
              if (reply.status === 204) early++;
            }
            return result;
          },
        };
      };
      await setUp(racing, () => startFakeTwilio(sid, authToken), { name: "twilio", accountSid: sid, authToken, from: "+15005550006" });
      await dispatcher.drain();
      expect(early).toBe(2);
      expect((await rows()).map((r) => r.status)).toEqual(["delivered", "delivered"]);
      expect(await t.database.rows(sql`select * from delivery_receipts`)).toEqual([]);
    });

    test("SMS.ru: receipts at the secret path (answered 100); a wrong token is 404 and changes nothing", async () => {
      await setUp(
        (url) => new SmsRuGateway({ apiId: "key", from: null, baseUrl: url, timeoutMs: 2000 }),
        () => startFakeSmsRu("key"),
        { name: "smsru", apiId: "key" },
      );
      await dispatcher.drain();
      const [a, b] = await rows();
      expect(a!.provider_message_id).toMatch(/^smsru:000000-/);
      const idOf = (row: typeof a) => row!.provider_message_id!.slice("smsru:".length);
      const body = new URLSearchParams();
      body.append("data[0]", `sms_status\n${idOf(a)}\n103\n1764583200`);
      body.append("data[1]", `sms_status\n${idOf(b)}\n106\n1764583200`);
      expect((await t.request("POST", "/webhooks/smsru/wrong-token-0123456789", body.toString(), form)).status).toBe(404);
      expect((await rows()).map((r) => r.status)).toEqual(["sent", "sent"]);
      const reply = await t.request("POST", `/webhooks/smsru/${webhookToken}`, body.toString(), form);
      expect(reply.status).toBe(200);
      expect(reply.text).toBe("100");
      const [a2, b2] = await rows();
      expect(a2!.status).toBe("delivered");
      expect(b2).toMatchObject({ status: "undelivered", last_error: "SMS.ru 106: phone failure" });
      // A token of another length, and a prefix of the right one, are refused alike.
      for (const wrong of ["x", webhookToken.slice(0, -1), `${webhookToken}0`]) {
        expect((await t.request("POST", `/webhooks/smsru/${wrong}`, body.toString(), form)).status).toBe(404);
      }
      // The token is in no log line: the request log names the route template.
      expect(JSON.stringify(t.logger.lines)).not.toContain(webhookToken);
      expect(t.logger.lines.some((l) => l.msg === "request" && l.route === "/webhooks/smsru/:token" && l.status === 200)).toBe(true);
    });

    test("SMSC.ru: receipts at the secret path (answered OK); a wrong token is 404 and changes nothing; a replay is harmless", async () => {
      await setUp(
        (url) => new SmscGateway({ login: "shop", password: "pa55", sender: null, baseUrl: url, timeoutMs: 2000 }),
        () => startFakeSmsc("shop", "pa55"),
        { name: "smsc", login: "shop", password: "pa55" },
      );
      await dispatcher.drain();
      const [a, b] = await rows();
      expect(a).toMatchObject({ status: "sent", provider_message_id: `smsc:${a!.id}` });
      const receipt = (id: number, status: string, err = "0") => new URLSearchParams({ id: String(id), phone: "79101234567", status, time: "1764583200", ts: "1764583200", err }).toString();
      expect((await t.request("POST", "/webhooks/smsc/wrong-token-0123456789", receipt(a!.id, "1"), form)).status).toBe(404);
      expect((await rows()).map((r) => r.status)).toEqual(["sent", "sent"]);
      for (let i = 0; i < 2; i++) {
        const reply = await t.request("POST", `/webhooks/smsc/${webhookToken}`, receipt(a!.id, "1"), form);
        expect([reply.status, reply.text]).toEqual([200, "OK"]);
        expect((await t.request("POST", `/webhooks/smsc/${webhookToken}`, receipt(b!.id, "20", "255"), form)).status).toBe(200);
      }
      const [a2, b2] = await rows();
      expect(a2!.status).toBe("delivered");
      expect(b2).toMatchObject({ status: "undelivered", last_error: "SMSC 20: cannot be delivered (error 255)" });
      // A receipt for a message this service never sent changes nothing.
      expect((await t.request("POST", `/webhooks/smsc/${webhookToken}`, receipt(999999, "20"), form)).status).toBe(200);
      expect((await rows()).map((r) => r.status)).toEqual(["delivered", "undelivered"]);
      expect(JSON.stringify(t.logger.lines)).not.toContain(webhookToken);
    });
  });
}
