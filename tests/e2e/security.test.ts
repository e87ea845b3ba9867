/**
 * Issue 14 item 6 in Chromium: hostile strings stored through the API and the forms (a client's tag
 * and attributes, a mailing's text and what it personalised, a token's name, a blocklist reason,
 * an e-mail tried at sign-in that lands in the audit log) show as text on every page that renders
 * them and run nothing: no dialog, no injected element, no CSP report in the console. The OpenAPI
 * page still works under its policy (its inline start-up script is allowed by hash).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { backends } from "../support/db";
import { haveChromium, launch, type Server, startServer, watchedPage } from "./harness";

setDefaultTimeout(180_000);

const key = "e2e-security-admin-key-0123456789";
const payloads = {
  img: `<img src=x onerror="document.title='pwned-img'">`,
  script: `"><script>document.title='pwned-script'</script>`,
  svg: `<svg onload="document.title='pwned-svg'"></svg>`,
  eta: `<%= it.csrf %>{{name}}`,
};
const hostile = Object.values(payloads);

async function injected(page: Page): Promise<string[]> {
  const found: string[] = [];
  if ((await page.title()).startsWith("pwned")) found.push(`title ${await page.title()}`);
  for (const selector of ['img[src="x"]', "svg[onload]", "[onerror]", "script:not([src])"]) {
    if ((await page.locator(selector).count()) > 0) found.push(selector);
  }
  return found;
}

for (const backend of backends()) {
  describe.skipIf(!haveChromium)(`[${backend}] hostile strings in Chromium${haveChromium ? "" : " (skipped: /usr/bin/chromium is not installed)"}`, () => {
    let server: Server;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let problems: string[];
    let dialogs: string[];
    let mailingId = 0;
    const api = async (method: string, path: string, body: unknown) => {
      const r = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(`${path} ${r.status}`).toBe(`${path} ${method === "POST" ? 201 : 200}`);
      return (await r.json()) as { id: number };
    };

    beforeAll(async () => {
      server = await startServer(backend, { ADMIN_API_KEY: key });
      browser = await launch();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
      ({ page, problems, dialogs } = await watchedPage(context));
      await page.goto(`${server.url}/register`);
      await page.getByLabel("E-mail").fill("boss@example.com");
      await page.getByLabel("Password").fill("correct horse battery");
      await page.getByRole("button", { name: "Create account" }).click();
      await page.waitForURL(`${server.url}/`);
      // Stored through the API: a client per payload (tag and attribute), a mailing, a blocklist reason.
      for (const [i, text] of hostile.entries()) {
        await api("POST", "/api/v1/clients", { phone_number: `7910111220${i}`, tag: text.slice(0, 64), timezone: "Europe/Moscow", attributes: { name: text } });
        await api("POST", "/api/v1/blocklist", { phone_number: `7920111220${i}`, reason: text });
      }
      mailingId = (await api("POST", "/api/v1/mailings", { text: `Hello {{name}} ${payloads.img}`, start_time: "2020-01-01T00:00:00", end_time: "2099-01-01T00:00:00" })).id;
      // Through the forms: a token's name; an e-mail tried at sign-in (the audit log shows it).
      await page.goto(`${server.url}/tokens`);
      await page.getByLabel("Name").fill(payloads.svg);
      await page.getByRole("button", { name: "Create token" }).click();
      await page.getByText("Copy it now").waitFor();
      const other = await browser.newContext();
      const login = await other.newPage();
      await login.goto(`${server.url}/login`);
      await login.getByLabel("E-mail").fill(`x@example.com${payloads.script}`.slice(0, 200));
      await login.getByLabel("Password").fill("wrong password here");
      await login.getByRole("button", { name: "Sign in" }).click();
      await login.waitForLoadState();
      await other.close();
    });
    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    test("every page that shows a stored hostile string shows it as text and runs nothing", async () => {
      // The mailing sends (sandbox provider): its messages carry the personalised text.
      const deadline = Date.now() + 60_000;
      for (;;) {
        await page.goto(`${server.url}/outbox`);
        if ((await page.locator("td.message-text").count()) >= hostile.length || Date.now() > deadline) break;
        await Bun.sleep(1_000);
      }
      const expected: Record<string, string[]> = {
        "/clients": hostile.map((s) => s.slice(0, 64)),
        "/blocklist": hostile,
        [`/mailings/${mailingId}`]: [payloads.img],
        "/mailings": [],
        "/tokens": [payloads.svg],
        "/admin/tokens": [payloads.svg],
        "/admin/audit": [payloads.script],
        "/": [],
        // The sandbox provider's outbox: the texts as personalised with each client's attribute.
        "/outbox": hostile.map((name) => `Hello ${name} ${payloads.img}`),
      };
      const faults: string[] = [];
      for (const [path, texts] of Object.entries(expected)) {
        await page.goto(server.url + path);
        await page.waitForLoadState("load");
        const body = (await page.locator("main").textContent()) ?? "";
        for (const text of texts) if (!body.includes(text)) faults.push(`${path}: does not show ${text} as text`);
        for (const f of await injected(page)) faults.push(`${path}: ${f}`);
      }
      expect(faults).toEqual([]);
      expect(dialogs).toEqual([]);
      // A blocked inline script or handler would be a CSP report here.
      expect(problems).toEqual([]);
    });

    test("the OpenAPI page renders its operations under the CSP, with no violation", async () => {
      await page.goto(`${server.url}/docs`);
      await page.locator(".opblock").first().waitFor({ timeout: 30_000 });
      expect(await page.locator(".opblock").count()).toBeGreaterThan(20);
      expect(problems.filter((p) => /Content Security Policy|Refused/i.test(p))).toEqual([]);
    });
  });
}
