/**
 * Issue 15 item 3: client attributes, placeholders in a mailing's text rendered per client at send
 * time, unknown placeholders refused at creation, and the SMS length of the longest rendering.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { auth } from "../support/app";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";
import { expectProblem } from "./expect-problem";

setDefaultTimeout(60_000);

const day = "2026-12-01";
const window = { start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` };

for (const backend of backends()) {
  describe(`[${backend}] personalised text`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("attributes are stored and returned; bad ones are a 422 naming the key", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      const created = await e.request("POST", "/api/v1/clients", { phone_number: "79101234567", attributes: { name: "Anna", city: "Kazan" } });
      expect(created.status).toBe(201);
      expect(created.body.attributes).toEqual({ name: "Anna", city: "Kazan" });
      const patched = await e.request("PATCH", `/api/v1/clients/${created.body.id}`, { attributes: { name: "Anya" } });
      expect(patched.body.attributes).toEqual({ name: "Anya" });
      expect((await e.request("GET", `/api/v1/clients/${created.body.id}`)).body.attributes).toEqual({ name: "Anya" });
      const bad = await e.request("POST", "/api/v1/clients", { phone_number: "79101234568", attributes: { "1x": "a", tag: "b" } });
      expectProblem(bad, 422, ["attributes.1x", "attributes.tag"]);
      expect((await e.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
    });

    test("each client gets its own text; fallbacks fill what a client lacks; the length is the longest rendering's", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234567", tag: "vip", attributes: { name: "Anna" } });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234568", tag: "vip" });
      const created = await e.request("POST", "/api/v1/mailings", { ...window, text: "Hi {{name|customer}} ({{tag}}), {{phone_number}}: {{name}}" });
      expect(created.status).toBe(201);
      // The longest text a client really gets (a name is one value in every occurrence).
      expect(created.body.sms).toEqual({ encoding: "GSM-7", characters: "Hi customer (vip), 79101234568: ".length, segments: 1 });
      await e.dispatcher.drain();
      const texts = Object.fromEntries(e.gateway.bodies.map((b) => [String(b.phone), b.text]));
      expect(texts).toEqual({
        "79101234567": "Hi Anna (vip), 79101234567: Anna",
        "79101234568": "Hi customer (vip), 79101234568: ",
      });
    });

    test("a placeholder that is no built-in, has no fallback and no matching client has is a 422 naming it", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234567", tag: "a", attributes: { name: "Anna" } });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234568", tag: "b" });
      const typo = await e.request("POST", "/api/v1/mailings", { ...window, text: "Hi {{nmae}} {{city|there}}" });
      expectProblem(typo, 422, ["text"]);
      expect(typo.text).toContain("{{nmae}}");
      expect(typo.text).not.toContain("city");
      // `name` exists, but not among the clients tagged b.
      expectProblem(await e.request("POST", "/api/v1/mailings", { ...window, text: "Hi {{name}}", tags_filter: ["b"] }), 422, ["text"]);
      expect((await e.request("POST", "/api/v1/mailings", { ...window, text: "Hi {{name}}", tags_filter: ["a"] })).status).toBe(201);
      expect((await e.request("GET", "/api/v1/mailings")).body.items).toHaveLength(1);
      const id = (await e.request("GET", "/api/v1/mailings")).body.items[0].id;
      expectProblem(await e.request("PATCH", `/api/v1/mailings/${id}`, { text: "{{surname}}" }), 422, ["text"]);
    });

    test("Cyrillic makes UCS-2: segments of 70 / 67 for the longest value", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234567", attributes: { name: "Анна" } });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234568", attributes: { name: "Я".repeat(70) } });
      const created = await e.request("POST", "/api/v1/mailings", { ...window, text: "Привет, {{name}}!" });
      expect(created.body.sms).toEqual({ encoding: "UCS-2", characters: 79, segments: 2 });
      expect((await e.request("GET", `/api/v1/mailings/${created.body.id}`)).body.sms.segments).toBe(2);
    });

    test("a shorter Cyrillic value outweighs a longer Latin one when it needs more segments", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234567", attributes: { name: "Alexander" } });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234568", attributes: { name: "Анна" } });
      // 68 characters of GSM-7 text: with "Alexander" 77 septets (1 SMS), with "Анна" 72 UCS-2 units (2 SMS).
      const text = `${"x".repeat(68)}{{name}}`;
      const created = await e.request("POST", "/api/v1/mailings", { ...window, text });
      expect(created.status).toBe(201);
      expect(created.body.sms).toEqual({ encoding: "UCS-2", characters: 72, segments: 2 });
      // And the other way round: a Latin value long enough outweighs a short Cyrillic one.
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234569", attributes: { name: "A".repeat(100) } });
      const longer = await e.request("POST", "/api/v1/mailings", { ...window, text });
      expect(longer.body.sms).toEqual({ encoding: "GSM-7", characters: 168, segments: 2 });
      await e.request("POST", "/api/v1/clients", { phone_number: "79101234560", attributes: { name: "Б".repeat(100) } });
      const both = await e.request("POST", "/api/v1/mailings", { ...window, text });
      expect(both.body.sms).toEqual({ encoding: "UCS-2", characters: 168, segments: 3 });
    });

    test("CSV import reads an attributes column (JSON), and the export writes it back", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      const body = ['phone_number,attributes', '79101234567,"{""name"":""Anna""}"', "79101234568,", "79101234569,{bad"].join("\n");
      const r = await e.request("POST", "/api/v1/clients/import", body, { ...auth, "content-type": "text/csv" });
      expect(r.body).toMatchObject({ created: 2, failed: 1 });
      expect(r.body.errors).toEqual([{ line: 4, field: "attributes", message: expect.stringContaining("JSON object") }]);
      const exported = (await e.request("GET", "/api/v1/clients/export")).text.split("\r\n");
      expect(exported[1]).toStartWith('79101234567,910,,UTC,"{""name"":""Anna""}",');
      expect(exported[2]).toStartWith("79101234568,910,,UTC,,");
      // A file without the column leaves attributes as they are.
      const again = "phone_number,tag\n79101234567,vip\n";
      await e.request("POST", "/api/v1/clients/import", again, { ...auth, "content-type": "text/csv" });
      const list = (await e.request("GET", "/api/v1/clients")).body.items;
      expect(list[0]).toMatchObject({ tag: "vip", attributes: { name: "Anna" } });
    });
  });
}
