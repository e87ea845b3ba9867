/**
 * Issue 15 item 1: each provider adapter against a local fake of that provider's documented API
 * (tests/support/provider-fakes.ts): what is sent, which answers are sent / retried / failed, and
 * the provider's message id.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { createGateway } from "../../src/gateway/select";
import { SmscGateway } from "../../src/gateway/smsc";
import { SmsRuGateway } from "../../src/gateway/smsru";
import { TwilioGateway } from "../../src/gateway/twilio";
import { type FakeProvider, startFakeSmsc, startFakeSmsRu, startFakeTwilio } from "../support/provider-fakes";

setDefaultTimeout(30_000);

const fakes: FakeProvider[] = [];
afterAll(async () => {
  for (const fake of fakes) await fake.stop();
});
function track<T extends FakeProvider>(fake: T): T {
  fakes.push(fake);
  return fake;
}

const message = { id: 117, phone: "79101459028", text: "Привет, {{name}}!" };
const sid = `AC${"1f".repeat(16)}`;

describe("twilio", () => {
  const fake = track(startFakeTwilio(sid, "secret-token", ["+79990000001"]));
  const env = { PROVIDER: "twilio", PROVIDER_URL: fake.url, TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: "secret-token", TWILIO_FROM: "+15005550006", PUBLIC_URL: "https://notify.example/" };
  const gateway = createGateway(loadConfig(env));

  test("PROVIDER=twilio posts the documented form with basic auth and returns the message sid", async () => {
    expect(gateway).toBeInstanceOf(TwilioGateway);
    const result = await gateway.send(message);
    expect(result).toEqual({ outcome: "sent", providerId: `SM${"1".padStart(32, "0")}` });
    const request = fake.requests.at(-1)!;
    expect(request.fields).toEqual({ To: "+79101459028", From: "+15005550006", Body: message.text, StatusCallback: "https://notify.example/webhooks/twilio" });
    expect(request.authorization).toBe(`Basic ${btoa(`${sid}:secret-token`)}`);
  });

  test("a messaging service SID is sent as MessagingServiceSid", async () => {
    const viaService = createGateway(loadConfig({ ...env, TWILIO_FROM: `MG${"0".repeat(32)}` }));
    expect((await viaService.send(message)).outcome).toBe("sent");
    expect(fake.requests.at(-1)!.fields.MessagingServiceSid).toBe(`MG${"0".repeat(32)}`);
    expect(fake.requests.at(-1)!.fields.From).toBeUndefined();
  });

  test("a recipient who replied STOP (21610) and an invalid number (21211) fail for good, naming Twilio's code", async () => {
    const stopped = await gateway.send({ ...message, phone: "79990000001" });
    expect(stopped).toMatchObject({ outcome: "failed" });
    expect((stopped as { error: string }).error).toContain("Twilio 21610");
    const invalid = await gateway.send({ ...message, phone: "7" });
    expect(invalid.outcome).toBe("failed");
    expect((invalid as { error: string }).error).toContain("HTTP 400 (Twilio 21211");
  });

  test("429 (20429), 5xx and a wrong auth token (401) are retried; the token is never in the error", async () => {
    fake.mode = "rate";
    expect(await gateway.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining("HTTP 429") });
    fake.mode = "down";
    expect(await gateway.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining("HTTP 500") });
    fake.mode = null;
    const wrong = createGateway(loadConfig({ ...env, TWILIO_AUTH_TOKEN: "hunter2" }));
    const result = await wrong.send(message);
    expect(result).toMatchObject({ outcome: "retry", error: expect.stringContaining("Twilio 20003") });
    expect(JSON.stringify(result)).not.toContain("hunter2");
  });

  test("without PUBLIC_URL no StatusCallback is asked for", async () => {
    const quiet = createGateway(loadConfig({ ...env, PUBLIC_URL: "" }));
    expect((await quiet.send(message)).outcome).toBe("sent");
    expect(fake.requests.at(-1)!.fields.StatusCallback).toBeUndefined();
  });
});

describe("smsru", () => {
  const fake = track(startFakeSmsRu("api-key", ["79990000009"]));
  const env = { PROVIDER: "smsru", PROVIDER_URL: fake.url, SMSRU_API_ID: "api-key", SMSRU_FROM: "Shop" };
  const gateway = createGateway(loadConfig(env));

  test("PROVIDER=smsru posts api_id, to, msg, json=1, from and returns the sms_id", async () => {
    expect(gateway).toBeInstanceOf(SmsRuGateway);
    expect(await gateway.send(message)).toEqual({ outcome: "sent", providerId: "000000-00000001" });
    expect(fake.requests.at(-1)!.fields).toEqual({ api_id: "api-key", to: "79101459028", msg: message.text, json: "1", from: "Shop" });
  });

  test("per-number refusals fail for good: 209 stop list, 202 wrong number; 203 no text", async () => {
    expect(await gateway.send({ ...message, phone: "79990000009" })).toMatchObject({ outcome: "failed", error: expect.stringContaining("SMS.ru 209") });
    expect(await gateway.send({ ...message, phone: "123" })).toMatchObject({ outcome: "failed", error: expect.stringContaining("SMS.ru 202") });
    expect(await gateway.send({ ...message, text: "" })).toMatchObject({ outcome: "failed", error: expect.stringContaining("SMS.ru 203") });
  });

  test("a wrong api_id (200), no balance (201) and service unavailable (220) are retried", async () => {
    const wrong = createGateway(loadConfig({ ...env, SMSRU_API_ID: "other" }));
    expect(await wrong.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining("SMS.ru 200") });
    for (const [mode, code] of [["balance", 201], ["down", 220]] as const) {
      fake.mode = mode;
      expect(await gateway.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining(`SMS.ru ${code}`) });
    }
    fake.mode = null;
  });

  test("a timeout is retried", async () => {
    fake.mode = "hang";
    const slow = new SmsRuGateway({ apiId: "api-key", from: null, baseUrl: fake.url, timeoutMs: 200 });
    expect(await slow.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining("timed out") });
    fake.mode = null;
  });
});

describe("smsc", () => {
  const fake = track(startFakeSmsc("shop", "pa55"));
  const env = { PROVIDER: "smsc", PROVIDER_URL: fake.url, SMSC_LOGIN: "shop", SMSC_PASSWORD: "pa55" };
  const gateway = createGateway(loadConfig(env));

  test("PROVIDER=smsc posts login, psw, phones, mes, our id, fmt=3 and returns the id", async () => {
    expect(gateway).toBeInstanceOf(SmscGateway);
    expect(await gateway.send(message)).toEqual({ outcome: "sent", providerId: "117" });
    expect(fake.requests.at(-1)!.fields).toEqual({ login: "shop", psw: "pa55", phones: "79101459028", mes: message.text, id: "117", charset: "utf-8", fmt: "3" });
  });

  test("a repeat of the same id within a minute (9) is retried, an invalid number (7) fails for good", async () => {
    expect(await gateway.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining("SMSC 9") });
    expect(await gateway.send({ ...message, id: 118, phone: "12" })).toMatchObject({ outcome: "failed", error: expect.stringContaining("SMSC 7") });
    expect(await gateway.send({ ...message, id: 119, text: "" })).toMatchObject({ outcome: "failed", error: expect.stringContaining("SMSC 1") });
  });

  test("wrong credentials (2) and no balance (3) are retried; the password is never in the error", async () => {
    const wrong = createGateway(loadConfig({ ...env, SMSC_PASSWORD: "hunter2" }));
    const result = await wrong.send({ ...message, id: 120 });
    expect(result).toMatchObject({ outcome: "retry", error: expect.stringContaining("SMSC 2") });
    expect(JSON.stringify(result)).not.toContain("hunter2");
    fake.mode = "balance";
    expect(await gateway.send({ ...message, id: 121 })).toMatchObject({ outcome: "retry", error: expect.stringContaining("SMSC 3") });
    fake.mode = null;
  });

  test("an unreachable provider is retried", async () => {
    const gone = new SmscGateway({ login: "shop", password: "pa55", sender: null, baseUrl: "http://127.0.0.1:1", timeoutMs: 1000 });
    expect(await gone.send(message)).toMatchObject({ outcome: "retry", error: expect.stringContaining("unreachable") });
  });
});

describe("delivery callbacks read as their docs describe them", () => {
  test("SMSC: status 1 delivered, 20/22/… undelivered with the error; 0 (with the operator) is no receipt", async () => {
    const { smscReceipts } = await import("../../src/webhooks/receipts");
    expect(smscReceipts(new URLSearchParams({ id: "117", phone: "79101459028", status: "1", err: "0" }))).toEqual([
      { providerMessageId: "smsc:117", status: "delivered", reason: null },
    ]);
    expect(smscReceipts(new URLSearchParams({ id: "118", phone: "79101459028", status: "20", err: "253" }))).toEqual([
      { providerMessageId: "smsc:118", status: "undelivered", reason: "SMSC 20: cannot be delivered (error 253)" },
    ]);
    expect(smscReceipts(new URLSearchParams({ id: "119", status: "0" }))).toEqual([]);
  });

  test("SMS.ru: several data[] entries in one callback; other kinds and in-transit codes are no receipts", async () => {
    const { smsRuReceipts } = await import("../../src/webhooks/receipts");
    const fields = new URLSearchParams();
    fields.append("data[0]", "sms_status\n000000-1\n103\n1764583200");
    fields.append("data[1]", "sms_status\n000000-2\n102\n1764583200");
    fields.append("data[2]", "callcheck_status\n000000-3\n401\n1764583200");
    fields.append("data[3]", "sms_status\n000000-4\n150\n1764583200");
    expect(smsRuReceipts(fields)).toEqual([
      { providerMessageId: "smsru:000000-1", status: "delivered", reason: null },
      { providerMessageId: "smsru:000000-4", status: "undelivered", reason: "SMS.ru 150: no route to the number" },
    ]);
  });
});
