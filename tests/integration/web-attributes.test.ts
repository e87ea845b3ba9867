/**
 * Issue 15 item 3 in the browser UI: a client's attributes are typed on the clients page (one
 * name=value a line, when adding and when editing a row), checked by the API's rules with the
 * message beside the field and the input kept, and shown in the list, in English and Russian.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] client attributes on the clients page`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    const stored = async (phone: string) =>
      (await app.database.rows<{ id: number; attributes: unknown }>(sql`select id, attributes from clients where phone_number = ${phone}`))[0];
    const count = async () => (await app.database.rows<{ n: number }>(sql`select count(*)::int as n from clients`))[0]!.n;

    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app, { "accept-language": "en" });
      await b.register("boss@example.com");
      csrf = await b.csrf("/clients");
    });
    afterAll(() => app.close());

    test("the add form has a labelled attributes field; name=value lines are stored and listed", async () => {
      const page = await b.get("/clients");
      expect(page.text).toMatch(/<label for="new-attributes">Attributes<\/label>/);
      expect(page.text).toContain('<textarea id="new-attributes" name="attributes"');
      const reply = await b.post("/clients", { phone_number: "79101112233", tag: "", timezone: "", attributes: "name = Anna\r\n\r\ncity=Kazan\nnote=a=b", _csrf: csrf });
      expect(reply.status).toBe(201);
      expect((await stored("79101112233"))!.attributes).toEqual({ name: "Anna", city: "Kazan", note: "a=b" });
      expect(reply.text).toContain('<span class="attribute-name">city</span> = Kazan');
      expect(reply.text).toContain('<span class="attribute-name">name</span> = Anna');
    });

    test("a bad line is refused beside the field, naming the line; everything typed is kept; nothing is created", async () => {
      const before = await count();
      const typed = "name=Anna\nno equals sign\n1st=x\ntag=vip\nname=again";
      const reply = await b.post("/clients", { phone_number: "79101112234", tag: "t", timezone: "Europe/Moscow", attributes: typed, _csrf: csrf });
      expect(reply.status).toBe(422);
      const error = /<small id="new-attributes-error" class="field-error">([^<]*)<\/small>/.exec(reply.text)?.[1] ?? "";
      expect(error).toContain("Line 2: write name=value.");
      expect(error).toContain("Line 3:");
      expect(error).toContain("Line 4:");
      expect(error).toContain("Line 5:");
      expect(reply.text).toMatch(/aria-invalid="true"[^>]*>name=Anna\nno equals sign\n1st=x\ntag=vip\nname=again<\/textarea>/);
      expect(reply.text).toMatch(/id="new-phone_number"[^>]*value="79101112234"/);
      expect(await count()).toBe(before);
      // The other fields are checked at the same time.
      const both = await b.post("/clients", { phone_number: "12", tag: "", timezone: "", attributes: "oops", _csrf: csrf });
      expect(both.text).toContain('id="new-attributes-error"');
      expect(both.text).toContain('id="new-phone_number-error"');
      // Too many, and too long: the API's limits.
      const many = Array.from({ length: 21 }, (_, i) => `a${i}=x`).join("\n");
      expect((await b.post("/clients", { phone_number: "79101112234", attributes: many, _csrf: csrf })).text).toContain("At most 20 attributes.");
      expect((await b.post("/clients", { phone_number: "79101112234", attributes: `long=${"x".repeat(257)}`, _csrf: csrf })).text).toContain("longer than 256 characters");
      expect(await count()).toBe(before);
    });

    test("editing a row shows the attributes as lines; a change replaces them, an empty field clears them", async () => {
      const { id } = (await stored("79101112233"))!;
      const edit = await b.get(`/clients/${id}/edit`);
      expect(edit.text).toContain(`<label class="visually-hidden" for="edit-attributes-${id}">Attributes</label>`);
      expect(edit.text).toMatch(/>city=Kazan\nname=Anna\nnote=a=b<\/textarea>/);
      const form = { phone_number: "79101112233", tag: "", timezone: "UTC", _csrf: csrf };
      const bad = await b.post(`/clients?id=${id}`, { ...form, attributes: "name=Anna\nphone_number=1" });
      expect(bad.status).toBe(422);
      expect(bad.text).toContain(`id="edit-attributes-${id}-error"`);
      expect(bad.text).toMatch(/>name=Anna\nphone_number=1<\/textarea>/);
      expect((await stored("79101112233"))!.attributes).toEqual({ name: "Anna", city: "Kazan", note: "a=b" });
      const saved = await b.post(`/clients?id=${id}`, { ...form, attributes: "name=Olga" });
      expect(saved.status).toBe(200);
      expect((await stored("79101112233"))!.attributes).toEqual({ name: "Olga" });
      await b.post(`/clients?id=${id}`, { ...form, attributes: "" });
      expect((await stored("79101112233"))!.attributes).toEqual({});
    });

    test("a value the form cannot show on one line (set through the API) is left alone by an edit", async () => {
      await app.database.rows(sql`update clients set attributes = '{"note":"two\\nlines"}'::jsonb where phone_number = '79101112233'`);
      const { id } = (await stored("79101112233"))!;
      const edit = await b.get(`/clients/${id}/edit`);
      expect(edit.text).toMatch(/<textarea id="edit-attributes-\d+" name="attributes"[^>]* disabled/);
      // A disabled field is not sent: the other fields change, the attributes stay.
      expect((await b.post(`/clients?id=${id}`, { phone_number: "79101112233", tag: "vip", timezone: "UTC", _csrf: csrf })).status).toBe(200);
      expect((await stored("79101112233"))!.attributes).toEqual({ note: "two\nlines" });
    });

    test("the mailing form's preview counts SMS segments for the longest rendering with these attributes", async () => {
      await b.post("/clients", { phone_number: "79101112240", attributes: `name=${"Анна".repeat(10)}`, _csrf: csrf });
      const preview = (text: string) => b.get(`/mailings/preview?${new URLSearchParams({ text, start_time: "2026-12-01T09:00", end_time: "2026-12-02T21:00", tags: "", codes: "" })}`);
      // 160 GSM-7 characters: one SMS; the longest name turns it into UCS-2 (70 a part, 67 beyond).
      expect((await preview("a".repeat(160))).text).toContain("Longest text: 160 characters in GSM-7, 1 SMS.");
      expect((await preview("Hi {{name|there}}!")).text).toContain("Longest text: 44 characters in UCS-2, 1 SMS.");
      expect((await preview(`Hi {{name|there}}!${"x".repeat(30)}`)).text).toContain("Longest text: 74 characters in UCS-2, 2 SMS.");
    });

    test("in Russian: the label, the hint and the messages", async () => {
      const ru = new Browser(app, { "accept-language": "ru" });
      for (const [k, v] of b.cookies) ru.cookies.set(k, v);
      const page = await ru.get("/clients");
      expect(page.text).toContain('<label for="new-attributes">Атрибуты</label>');
      expect(page.text).toContain("По одному имя=значение в строке");
      const reply = await ru.post("/clients", { phone_number: "79101112235", attributes: "без знака", _csrf: csrf });
      expect(reply.text).toContain("Строка 1: пишите имя=значение.");
    });
  });
}
