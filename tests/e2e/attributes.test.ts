/**
 * Issue 15 item 3 in a real Chromium: a person types a client's attributes on the clients page (one
 * name=value a line), sees a bad line refused beside the field with what they typed kept, sees the
 * attributes in the list, and changes them in the row's inline form — in English and Russian, at
 * desktop width and at 390 px, with no console error, no serious axe violation, no sideways scroll.
 * Screenshots go to /tmp/ui-shots.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { backends } from "../support/db";
import { haveChromium, launch, scrollsSideways, seriousViolations, type Server, startServer, watchedPage } from "./harness";

setDefaultTimeout(180_000);

const shots = "/tmp/ui-shots";

for (const backend of backends()) {
  describe.skipIf(!haveChromium)(`[${backend}] client attributes in Chromium${haveChromium ? "" : " (skipped: /usr/bin/chromium is not installed)"}`, () => {
    let server: Server;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let problems: string[];

    beforeAll(async () => {
      mkdirSync(shots, { recursive: true });
      server = await startServer(backend);
      browser = await launch();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
      ({ page, problems } = await watchedPage(context));
      await page.goto(server.url + "/register");
      await page.getByLabel("E-mail").fill("boss@example.com");
      await page.getByLabel("Password").fill("correct horse battery");
      await page.getByRole("button", { name: "Create account" }).click();
      await page.waitForURL(server.url + "/");
    });
    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    async function check(label: string) {
      expect({ label, sideways: await scrollsSideways(page) }).toEqual({ label, sideways: false });
      expect({ label, violations: await seriousViolations(page) }).toEqual({ label, violations: [] });
      expect({ label, problems }).toEqual({ label, problems: [] });
    }

    test("add with attributes, a bad line refused beside the field, edit inline; both languages, both widths", async () => {
      await page.goto(server.url + "/clients");
      await page.getByLabel("Phone", { exact: true }).fill("+7 910 111-22-33");
      const field = page.getByLabel("Attributes");
      await field.fill("name=Anna\ncity Kazan");
      await page.getByRole("button", { name: "Add a client" }).click();
      await page.locator("#new-attributes-error").waitFor();
      expect(await page.locator("#new-attributes-error").textContent()).toContain("Line 2: write name=value.");
      expect(await page.getByLabel("Attributes").inputValue()).toBe("name=Anna\ncity Kazan");
      expect(await page.getByLabel("Phone", { exact: true }).inputValue()).toBe("+7 910 111-22-33");
      await page.screenshot({ path: `${shots}/${backend}-attributes-error-en-1280.png`, fullPage: true, caret: "initial" });
      await check("error en 1280");

      await page.getByLabel("Attributes").fill("name=Anna\ncity=Kazan");
      await page.getByRole("button", { name: "Add a client" }).click();
      await page.getByText("Client 79101112233 added.").waitFor();
      const row = page.locator("tr", { hasText: "79101112233" });
      expect(await row.locator("td.attributes").innerText()).toBe("city = Kazan\nname = Anna");
      // Another client, and one without attributes, so the list has some variety.
      await page.getByLabel("Phone", { exact: true }).fill("89201234567");
      await page.locator("#new-tag").fill("vip");
      await page.getByLabel("Attributes").fill("name=Олег\nvisit=2026-12-01");
      await page.getByRole("button", { name: "Add a client" }).click();
      await page.getByText("Client 79201234567 added.").waitFor();
      await page.getByLabel("Phone", { exact: true }).fill("9301234567");
      await page.getByRole("button", { name: "Add a client" }).click();
      await page.getByText("Client 79301234567 added.").waitFor();

      await page.getByRole("button", { name: "Edit 79101112233" }).click();
      const edit = page.locator("tr.editing").getByLabel("Attributes");
      await edit.waitFor();
      expect(await edit.inputValue()).toBe("city=Kazan\nname=Anna");
      await page.screenshot({ path: `${shots}/${backend}-attributes-edit-en-1280.png`, fullPage: true, caret: "initial" });
      await check("edit en 1280");
      await edit.fill("name=Anna\ncity=Kazan\nbonus=500");
      await page.locator("tr.editing").getByRole("button", { name: "Save" }).click();
      await page.locator("tr.editing").waitFor({ state: "detached" });
      expect(await page.locator("tr", { hasText: "79101112233" }).locator("td.attributes").innerText()).toBe("bonus = 500\ncity = Kazan\nname = Anna");

      for (const lang of ["en", "ru"] as const) {
        await page.goto(server.url + "/clients");
        await page.getByRole("button", { name: lang.toUpperCase(), exact: true }).click();
        await page.waitForLoadState();
        for (const width of [1280, 390]) {
          await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
          await page.goto(server.url + "/clients");
          const label = lang === "en" ? "Attributes" : "Атрибуты";
          await page.getByLabel(label, { exact: true }).fill("name=Anna\n1st=x");
          await page.getByRole("button", { name: lang === "en" ? "Add a client" : "Добавить клиента" }).click();
          await page.locator("#new-attributes-error").waitFor();
          await page.screenshot({ path: `${shots}/${backend}-attributes-${lang}-${width}.png`, fullPage: true, caret: "initial" });
          await check(`clients ${lang} ${width}`);
          await page.goto(server.url + "/clients");
          await page.getByRole("button", { name: lang === "en" ? "Edit 79201234567" : "Изменить 79201234567" }).click();
          await page.locator("tr.editing").getByLabel(label).waitFor();
          await page.screenshot({ path: `${shots}/${backend}-attributes-edit-${lang}-${width}.png`, fullPage: true, caret: "initial" });
          await check(`edit ${lang} ${width}`);
        }
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    });
  });
}
