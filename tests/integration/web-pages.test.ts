/** SPEC §9 pages through app.handle: headers, languages, fragments, escaping, clients and tokens. */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { en } from "../../src/web/i18n/en";
import { ru } from "../../src/web/i18n/ru";
import { negotiate } from "../../src/web/i18n";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const xss = "<img src=x onerror=alert(1)>";

test("both catalogues have the same keys and no empty message", () => {
  expect(Object.keys(ru).sort()).toEqual(Object.keys(en).sort());
  for (const text of [...Object.values(en), ...Object.values(ru)]) expect(text.trim()).not.toBe("");
});

test("Accept-Language picks the best supported language by q, English otherwise", () => {
  expect(negotiate("ru-RU,ru;q=0.9,en;q=0.8")).toBe("ru");
  expect(negotiate("de-DE, en;q=0.5, ru;q=0.7")).toBe("ru");
  expect(negotiate("fr")).toBe("en");
  expect(negotiate(null)).toBe("en");
  expect(negotiate("ru;q=0, en")).toBe("en");
});

for (const backend of backends()) {
  describe(`[${backend}] §9 pages`, () => {
    let app: WebApp;
    let b: Browser;
    let csrf: string;
    beforeAll(async () => {
      app = await webApp(backend);
      b = new Browser(app);
      await b.register("boss@example.com");
      csrf = await b.csrf();
    });
    afterAll(() => app.close());

    test("every page answers HTML with the security headers and no-store", async () => {
      for (const path of ["/", "/clients", "/tokens", "/blocklist", "/mailings", "/admin", "/login", "/register"]) {
        const page = await b.get(path);
        expect([200, 303]).toContain(page.status);
        const csp = page.headers.get("content-security-policy")!;
        expect(csp).toContain("script-src 'self'");
        expect(csp).not.toContain("unsafe-inline");
        expect(csp).toContain("frame-ancestors 'none'");
        expect(page.headers.get("x-content-type-options")).toBe("nosniff");
        expect(page.headers.get("referrer-policy")).toBe("same-origin");
        expect(page.headers.get("cache-control")).toBe("no-store");
        expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
        expect(page.text).not.toMatch(/\son[a-z]+=/i); // no on*= handler attributes
      }
    });

    test("htmx and Pico are served locally", async () => {
      for (const path of ["/static/htmx.min.js", "/static/pico.min.css", "/static/app.css"]) {
        expect((await b.get(path)).status).toBe(200);
      }
      expect((await b.get("/static/htmx.min.js")).text).toContain("4.0.1");
    });

    test("an htmx request gets the same page as a fragment, without the layout", async () => {
      const whole = await b.get("/clients");
      const fragment = await b.get("/clients", { "hx-request": "true" });
      expect(whole.text).toContain("<html");
      expect(fragment.text).not.toContain("<html");
      expect(fragment.text).toContain('id="client-list"');
    });

    test("Russian from Accept-Language; the switch remembers English in a cookie", async () => {
      const ruBrowser = new Browser(app, { "accept-language": "ru-RU,ru;q=0.9" });
      ruBrowser.cookies.set("nst_session", b.cookies.get("nst_session")!);
      const page = await ruBrowser.get("/");
      expect(page.text).toContain('<html lang="ru">');
      expect(page.text).toContain("Сводка");
      const switched = await ruBrowser.post("/lang", { lang: "en", back: "/clients", _csrf: csrf });
      expect(switched.status).toBe(303);
      expect(switched.headers.get("location")).toBe("/clients");
      const after = await ruBrowser.get("/");
      expect(after.text).toContain('<html lang="en">');
      expect(after.text).toContain("Dashboard");
      // The return path stays on this site.
      expect((await ruBrowser.post("/lang", { lang: "ru", back: "//evil.example/x", _csrf: csrf })).headers.get("location")).toBe("/");
    });

    test("a client added with a tag of markup shows it as text", async () => {
      const added = await b.post("/clients", { phone_number: "+7 (910) 145-90-28", tag: xss, timezone: "Europe/Moscow", _csrf: csrf });
      expect(added.status).toBe(201);
      const page = await b.get("/clients");
      expect(page.text).toContain("&lt;img src=x onerror=alert(1)&gt;");
      expect(page.text).not.toContain(xss);
    });

    test("validation errors appear beside their fields, with what was typed kept", async () => {
      const reply = await b.post("/clients", { phone_number: "12345", tag: "keep-me", timezone: "Asia/Unknown", _csrf: csrf });
      expect(reply.status).toBe(422);
      expect(reply.text).toMatch(/id="new-phone_number"[^>]*value="12345"[^>]*aria-invalid="true"/);
      expect(reply.text).toContain('id="new-phone_number-error"');
      expect(reply.text).toContain('id="new-timezone-error"');
      expect(reply.text).toContain('value="keep-me"');
      const duplicate = await b.post("/clients", { phone_number: "89101459028", _csrf: csrf });
      expect(duplicate.status).toBe(422);
      expect(duplicate.text).toContain("already exists");
    });

    test("search by phone digits, filter by tag and code, cursor pagination", async () => {
      for (let i = 0; i < 55; i++) {
        await b.post("/clients", { phone_number: `7920${String(i).padStart(7, "0")}`, tag: i % 2 ? "odd" : "even", _csrf: csrf });
      }
      const first = await b.get("/clients?code=920");
      expect(first.text.match(/<tr id="client-/g)!.length).toBe(50);
      const next = /href="(\/clients\?code=920&amp;cursor=\d+)"/.exec(first.text)![1]!.replace("&amp;", "&");
      const second = await b.get(next);
      expect(second.text.match(/<tr id="client-/g)!.length).toBe(5);
      const found = await b.get("/clients?q=920-000-00-07");
      expect(found.text).toContain("79200000007");
      expect(found.text.match(/<tr id="client-/g)!.length).toBe(1);
      const odd = await b.get("/clients?tag=odd&code=920");
      expect(odd.text.match(/<tr id="client-/g)!.length).toBe(27);
    });

    test("the export link downloads the filtered list as CSV", async () => {
      const page = await b.get("/clients?tag=odd&code=920");
      const href = /href="(\/clients\/export[^"]*)"/.exec(page.text)![1]!.replaceAll("&amp;", "&");
      expect(href).toBe("/clients/export?tag=odd&code=920");
      const csv = await b.get(href);
      expect(csv.headers.get("content-type")).toStartWith("text/csv");
      expect(csv.text.trimEnd().split("\r\n").length).toBe(28);
      expect((await new Browser(app).get(href)).status).toBe(303); // signed out: to the sign-in page
    });

    test("edit inline and delete", async () => {
      const page = await b.get("/clients?q=79200000001");
      const id = /<tr id="client-(\d+)"/.exec(page.text)![1]!;
      const edit = await b.get(`/clients/${id}/edit`, { "hx-request": "true" });
      expect(edit.text).toContain(`id="edit-tag-${id}"`);
      expect(edit.text).toContain(`<label class="visually-hidden" for="edit-tag-${id}">`);
      const bad = await b.post(`/clients?id=${id}`, { phone_number: "79200000001", tag: "x", timezone: "Nowhere/Land" }, { "x-csrf-token": csrf, "hx-request": "true" });
      expect(bad.status).toBe(200); // htmx: the edit row with its errors (plain posts get 422)
      expect(bad.text).toContain('aria-invalid="true"');
      expect(bad.text).toContain('value="Nowhere/Land"');
      const saved = await b.post(`/clients?id=${id}`, { phone_number: "79200000001", tag: "gold", timezone: "Asia/Vladivostok" }, { "x-csrf-token": csrf, "hx-request": "true" });
      expect(saved.status).toBe(200);
      expect(saved.text).toContain("Asia/Vladivostok");
      expect(saved.text).not.toContain("<html");
      const noToken = await b.send("DELETE", `/clients/${id}`, { headers: { "hx-request": "true" } });
      expect(noToken.status).toBe(403);
      const deleted = await b.send("DELETE", `/clients/${id}`, { headers: { "x-csrf-token": csrf, "hx-request": "true" } });
      expect(deleted.status).toBe(200);
      expect((await b.get("/clients?q=79200000001")).text).not.toContain(`client-${id}"`);
    });

    test("tokens: the secret is shown once, listed without it, revoked", async () => {
      const created = await b.post("/tokens", { name: "crm <sync>", _csrf: csrf });
      const secret = /value="(nst_[^"]+)"/.exec(created.text)![1]!;
      expect(created.text).toContain("crm &lt;sync&gt;");
      const api = await app.handle(new Request("http://localhost/api/v1/clients?limit=1", { headers: { authorization: `Bearer ${secret}` } }));
      expect(api.status).toBe(200);
      const list = await b.get("/tokens");
      expect(list.text).not.toContain(secret);
      const id = /action="\/tokens\/(\d+)\/revoke"/.exec(list.text)![1]!;
      expect((await b.post(`/tokens/${id}/revoke`, { _csrf: csrf })).status).toBe(200);
      const after = await app.handle(new Request("http://localhost/api/v1/clients?limit=1", { headers: { authorization: `Bearer ${secret}` } }));
      expect(after.status).toBe(401);
    });

    test("blocklist: block with a reason (escaped), a bad phone beside the field, unblock; CSRF required", async () => {
      expect((await b.post("/blocklist", { phone: "+7 910 000-00-77", reason: "<said stop>" })).status).toBe(403);
      const blocked = await b.post("/blocklist", { phone: "+7 910 000-00-77", reason: "<said stop>", _csrf: csrf });
      expect(blocked.status).toBe(200);
      expect(blocked.text).toContain("79100000077");
      expect(blocked.text).toContain("&lt;said stop&gt;");
      const bad = await b.post("/blocklist", { phone: "12", reason: "", _csrf: csrf });
      expect(bad.status).toBe(422);
      expect(bad.text).toContain('id="block-phone-error"');
      expect(bad.text).toContain('value="12"');
      expect((await b.post("/blocklist/79100000077/unblock", { _csrf: csrf })).status).toBe(200);
      expect((await b.get("/blocklist")).text).not.toContain("79100000077");
    });
  });
}

for (const backend of backends()) {
  describe(`[${backend}] §9 sandbox outbox`, () => {
    test("with the sandbox as gateway: a nav link and what it sent, newest first, escaped", async () => {
      const outbox = { sent: [{ id: 1, phone: "79101459028", text: "first" }, { id: 2, phone: "79201112233", text: xss }], total: 2 };
      const app = await webApp(backend, {}, outbox);
      try {
        const b = new Browser(app);
        await b.register("boss@example.com");
        const page = await b.get("/outbox");
        expect(page.text).toContain('href="/outbox"');
        expect(page.text.indexOf("79201112233")).toBeLessThan(page.text.indexOf("79101459028"));
        expect(page.text).toContain("&lt;img src=x onerror=alert(1)&gt;");
      } finally {
        await app.close();
      }
    });

    test("with another gateway: no link, and the page says the sandbox is not in use", async () => {
      const app = await webApp(backend);
      try {
        const b = new Browser(app);
        await b.register("boss@example.com");
        expect((await b.get("/")).text).not.toContain('href="/outbox"');
        expect((await b.get("/outbox")).text).toContain("The sandbox is not the gateway of this process");
      } finally {
        await app.close();
      }
    });
  });
}
