/**
 * Phone-width cards (static/app.css, `table.cards`): a mailing's text, up to 1,000 characters, keeps
 * a few lines in its card on the dashboard and the mailings list, as one clipped line does on a wide
 * screen. Layout only, so one backend (the embedded one) is enough.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { haveChromium, launch, scrollsSideways, type Server, startServer, watchedPage } from "./harness";

setDefaultTimeout(180_000);

describe.skipIf(!haveChromium)(`[pglite] phone-width cards in Chromium${haveChromium ? "" : " (skipped: /usr/bin/chromium is not installed)"}`, () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    server = await startServer("pglite", { ADMIN_API_KEY: "cards-key" });
    browser = await launch();
    ({ page, problems } = await watchedPage(await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US" })));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a running mailing's 1,000-character text takes at most a few lines of its card, in both languages", async () => {
    await page.goto(server.url + "/register");
    await page.getByLabel("E-mail").fill("cards@example.com");
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(server.url + "/");
    const wall = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const created = await fetch(`${server.url}/api/v1/mailings`, {
      method: "POST",
      headers: { authorization: "Bearer cards-key", "content-type": "application/json" },
      // No client: the mailing stays running (on the dashboard) for the day.
      body: JSON.stringify({ text: "Длинный текст рассылки, word ".repeat(40).slice(0, 1000), start_time: wall(Date.now() - 86_400_000), end_time: wall(Date.now() + 86_400_000) }),
    });
    expect(created.status).toBe(201);
    for (const lang of ["EN", "RU"]) {
      await page.getByRole("button", { name: lang }).click();
      await page.waitForLoadState();
      for (const path of ["/", "/mailings"]) {
        await page.goto(server.url + path);
        const cell = page.locator("table.cards td.clip").first();
        const [height, lineHeight] = await cell.evaluate((td) => [td.getBoundingClientRect().height, Number.parseFloat(getComputedStyle(td).lineHeight)]);
        expect({ path, lang, atMost4Lines: height <= 4 * lineHeight }).toEqual({ path, lang, atMost4Lines: true });
        expect(await scrollsSideways(page)).toBe(false);
      }
    }
    expect(problems).toEqual([]);
  });

  test("a message not sent yet shows no bare 'Sent' and 'Last error' labels in its card; a wide screen keeps the columns", async () => {
    const headers = { authorization: "Bearer cards-key", "content-type": "application/json" };
    const client = await fetch(`${server.url}/api/v1/clients`, { method: "POST", headers, body: JSON.stringify({ phone_number: "+79101459028", tag: "cards", timezone: "Europe/Moscow" }) });
    expect(client.status).toBe(201);
    const wall = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const created = await fetch(`${server.url}/api/v1/mailings`, {
      method: "POST",
      headers,
      // Starts tomorrow: its message stays scheduled, never sent, no error.
      body: JSON.stringify({ text: "Tomorrow", start_time: wall(Date.now() + 86_400_000), end_time: wall(Date.now() + 2 * 86_400_000), tags_filter: ["cards"] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    await page.getByRole("button", { name: "EN" }).click();
    await page.waitForLoadState();
    await page.goto(`${server.url}/mailings/${id}`);
    const cell = (label: string) => page.locator(`table.cards td[data-label="${label}"]`).first();
    await expect(cell("Phone").isVisible()).resolves.toBe(true);
    await expect(cell("Attempts").isVisible()).resolves.toBe(true);
    await expect(cell("Sent").isVisible()).resolves.toBe(false);
    await expect(cell("Last error").isVisible()).resolves.toBe(false);
    const wide = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await wide.context().addCookies(await page.context().cookies());
      await wide.goto(`${server.url}/mailings/${id}`);
      // On a wide screen the empty cell keeps its column (the rows stay aligned under their heads).
      await expect(wide.locator('table.cards td[data-label="Last error"]').first().isVisible()).resolves.toBe(true);
    } finally {
      await wide.close();
    }
    expect(problems).toEqual([]);
  });
});
