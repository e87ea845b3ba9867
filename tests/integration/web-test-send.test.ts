/** SPEC §9 test send: one message through the configured gateway, no rows written, limited per user, CSRF-checked. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import type { Gateway, OutgoingMessage, SendResult } from "../../src/gateway/gateway";
import { testSendLimits } from "../../src/web/routes/test-send";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

class RecordingGateway implements Gateway {
  readonly name = "recording";
  readonly sent: OutgoingMessage[] = [];
  next: SendResult = { outcome: "sent" };
  async send(message: OutgoingMessage): Promise<SendResult> {
    this.sent.push(message);
    return this.next;
  }
}

for (const backend of backends()) {
  describe(`[${backend}] §9 test send`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    const gateway = new RecordingGateway();
    const rows = async () =>
      (await app.database.rows<{ n: number }>(sql`select (select count(*) from mailings)::int + (select count(*) from messages)::int as n`))[0]!.n;
    beforeAll(async () => {
      app = await webApp(backend, {}, null, undefined, gateway);
      b = new Browser(app);
      await b.register("boss@example.com");
      csrf = await b.csrf();
    });
    afterAll(() => app.close());

    test("the create form offers it; it sends the text to the one phone and writes no row", async () => {
      expect((await b.get("/mailings")).text).toContain('formaction="/mailings/test-send"');
      const reply = await b.post("/mailings/test-send", { text: "Hello <b>", test_phone: "+7 (910) 145-90-28", start_time: "", _csrf: csrf }, { "hx-request": "true" });
      expect(reply.status).toBe(200);
      expect(reply.text).toContain("Sent to 79101459028 through recording.");
      expect(gateway.sent).toEqual([{ id: 0, phone: "79101459028", text: "Hello <b>" }]);
      expect(await rows()).toBe(0);
    });

    test("a bad phone or an empty text is refused beside the form and sends nothing; a gateway refusal is shown", async () => {
      gateway.sent.length = 0;
      const phone = await b.post("/mailings/test-send", { text: "Hi", test_phone: "12", _csrf: csrf });
      expect(phone.text).toContain("Enter a Russian phone number");
      const text = await b.post("/mailings/test-send", { text: " ", test_phone: "79101459028", _csrf: csrf });
      expect(text.text).toContain("Enter the text to send");
      expect(gateway.sent).toEqual([]);
      gateway.next = { outcome: "failed", error: "number blocked" };
      const refused = await b.post("/mailings/test-send", { text: "Hi", test_phone: "79101459028", _csrf: csrf }, { "hx-request": "true" });
      expect(refused.text).toContain("The gateway did not send it: number blocked");
      gateway.next = { outcome: "sent" };
    });

    test("without the CSRF token nothing is sent", async () => {
      gateway.sent.length = 0;
      expect((await b.post("/mailings/test-send", { text: "Hi", test_phone: "79101459028", _csrf: "" })).status).toBe(403);
      expect(gateway.sent).toEqual([]);
    });

    test(`at most ${testSendLimits.perUser} a minute per user; the window moves with the clock`, async () => {
      app.clock.advance(testSendLimits.windowMs / 1000);
      gateway.sent.length = 0;
      for (let i = 0; i < testSendLimits.perUser; i++) {
        expect((await b.post("/mailings/test-send", { text: "Hi", test_phone: "79101459028", _csrf: csrf })).text).toContain("Sent to");
      }
      const limited = await b.post("/mailings/test-send", { text: "Hi", test_phone: "79101459028", _csrf: csrf });
      expect(limited.text).toContain("Too many test sends; try again in 60 s.");
      expect(gateway.sent).toHaveLength(testSendLimits.perUser);
      app.clock.advance(testSendLimits.windowMs / 1000);
      expect((await b.post("/mailings/test-send", { text: "Hi", test_phone: "79101459028", _csrf: csrf })).text).toContain("Sent to");
    });
  });
}
