/**
 * SPEC §9 / issue 12 in a real Chromium against the real server: an admin signs in through an
 * OpenID Connect provider (the fake, on 127.0.0.1), uses the admin area by keyboard, and a stranger
 * is refused. Every admin page in both languages at 1280 and 390 px: no serious axe violation, no
 * console error, no sideways scroll; screenshots in /tmp/ui-shots.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { backends } from "../support/db";
import { type FakeProvider, startFakeProvider } from "../support/fake-oauth";
import { haveChromium, launch, scrollsSideways, seriousViolations, type Server, startServer, watchedPage } from "./harness";

setDefaultTimeout(180_000);

const shots = "/tmp/ui-shots";
const docsShots = process.env.UPDATE_SCREENSHOTS === "1" ? new URL("../../docs/screenshots/", import.meta.url).pathname : null;
const password = "correct horse battery";

for (const backend of backends()) {
  describe.skipIf(!haveChromium)(`[${backend}] §9 admin sign-in through OIDC and the admin area in Chromium`, () => {
    let fake: FakeProvider;
    let server: Server;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let problems: string[];

    beforeAll(async () => {
      mkdirSync(shots, { recursive: true });
      fake = await startFakeProvider({ "e2e-client": "e2e-secret" });
      server = await startServer(backend, {
        ADMIN_EMAILS: "boss@example.com",
        OAUTH_OIDC_ISSUER: fake.url,
        OAUTH_OIDC_CLIENT_ID: "e2e-client",
        OAUTH_OIDC_CLIENT_SECRET: "e2e-secret",
      });
      browser = await launch();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
      ({ page, problems } = await watchedPage(context));
    });
    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      fake?.stop();
    });

    async function checkPage(p: Page, label: string, seen: string[]) {
      expect({ label, violations: await seriousViolations(p) }).toEqual({ label, violations: [] });
      expect({ label, problems: seen }).toEqual({ label, problems: [] });
    }

    async function register(email: string) {
      await page.goto(server.url + "/register");
      await page.getByLabel("E-mail").fill(email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Create account" }).click();
      await page.waitForURL(server.url + "/");
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(server.url + "/login");
    }

    test("an allowed e-mail signs in with single sign-on and lands as admin", async () => {
      await register("first@example.com");
      await register("op@example.com");
      await checkPage(page, "login with SSO button", problems);
      await page.getByRole("button", { name: "Sign in with single sign-on" }).click();
      await page.waitForURL(server.url + "/");
      expect(await page.getByText("boss@example.com · admin").count()).toBe(1);
      await page.getByRole("link", { name: "Admin" }).click();
      await page.waitForURL(server.url + "/admin");
      await checkPage(page, "admin users", problems);
    });

    test("the admin area works by keyboard: Tab to an operator's Disable button, Enter", async () => {
      await page.goto(server.url + "/admin");
      const target = "Disable: op@example.com";
      let reached = false;
      for (let i = 0; i < 60 && !reached; i++) {
        await page.keyboard.press("Tab");
        reached = (await page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')")) === target;
      }
      expect(reached).toBe(true);
      await page.keyboard.press("Enter");
      await page.getByText("op@example.com is disabled").waitFor();
      expect(await page.getByRole("button", { name: "Enable: op@example.com" }).count()).toBe(1);
      await checkPage(page, "admin after disabling", problems);
    });

    test("the audit log shows the sign-ins and the disable, and filters by event", async () => {
      await page.goto(server.url + "/admin/audit");
      expect(await page.getByRole("cell", { name: "sign-in (OAuth)" }).count()).toBe(1);
      expect(await page.getByRole("cell", { name: "user disabled" }).count()).toBe(1);
      // The connection's address, from the listener (not a header).
      expect(await page.getByRole("cell", { name: "127.0.0.1", exact: true }).count()).toBeGreaterThan(0);
      await page.getByLabel("Event").selectOption("user.disabled");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.waitForURL(/kind=user.disabled/);
      expect(await page.getByRole("cell", { name: "sign-in (OAuth)" }).count()).toBe(0);
      expect(await page.getByRole("cell", { name: "user disabled" }).count()).toBe(1);
      await checkPage(page, "audit filtered", problems);
    });

    test("every admin page in both languages: axe, no console error, no sideways scroll at 390 px; screenshots", async () => {
      // A token to list on the admin tokens page.
      await page.goto(server.url + "/tokens");
      await page.getByLabel("Name", { exact: true }).fill("crm-sync");
      await page.getByRole("button", { name: "Create token" }).click();
      await page.getByText("crm-sync").first().waitFor();
      for (const lang of ["en", "ru"] as const) {
        await page.goto(server.url + "/admin");
        await page.getByRole("button", { name: lang.toUpperCase(), exact: true }).click();
        await page.waitForLoadState();
        for (const width of [1280, 390]) {
          await page.setViewportSize({ width, height: 900 });
          for (const path of ["/admin", "/admin/tokens", "/admin/audit"]) {
            await page.goto(server.url + path);
            const label = `${path} ${lang} ${width}`;
            await checkPage(page, label, problems);
            expect({ label, sideways: await scrollsSideways(page) }).toEqual({ label, sideways: false });
            const name = `admin${path.replace("/admin", "").replace("/", "-")}-${lang}-${width}`;
            await page.screenshot({ path: `${shots}/${backend}-${name}.png`, fullPage: true });
            if (backend === "pglite" && docsShots && width === 1280 && lang === "en") await page.screenshot({ path: `${docsShots}${name}.png`, fullPage: true });
          }
        }
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    test("an e-mail not in ADMIN_EMAILS is refused with a page in the browser's language", async () => {
      fake.user = { sub: "stranger", email: "stranger@example.com", email_verified: true };
      const ru = await browser.newContext({ viewport: { width: 390, height: 800 }, locale: "ru-RU" });
      try {
        const watched = await watchedPage(ru);
        await watched.page.goto(server.url + "/login");
        await watched.page.getByRole("button", { name: "Войти через единый вход (SSO)" }).click();
        await watched.page.getByRole("heading", { name: "Вход отклонён" }).waitFor();
        expect(await watched.page.getByText("Этой учётной записи вход сюда не разрешён").count()).toBe(1);
        await watched.page.screenshot({ path: `${shots}/${backend}-oauth-refused-ru-390.png`, fullPage: true });
        // The refusal answers 403, which Chromium logs as a failed resource; nothing else may appear.
        await checkPage(watched.page, "refused", watched.problems.filter((m) => !/status of 403/.test(m)));
        expect(await scrollsSideways(watched.page)).toBe(false);
      } finally {
        await ru.close();
      }
    });
  });
}
