/**
 * SPEC §9 in a real Chromium against the real server: sign-up and sign-in, CSRF from another site,
 * escaping, the login rate limit, both languages, the clients and tokens pages, the live dashboard;
 * on every page: no console errors, no serious axe violations, no sideways scroll at 390 px.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { backends } from "../support/db";
import { freePort } from "../support/processes";
import { haveChromium, launch, scrollsSideways, seriousViolations, type Server, startServer, watchedPage } from "./harness";

setDefaultTimeout(180_000);

const shots = "/tmp/ui-shots";
/** README's screenshots are rewritten only when asked (UPDATE_SCREENSHOTS=1), so a test run leaves the tree clean. */
const docsShots = process.env.UPDATE_SCREENSHOTS === "1" ? new URL("../../docs/screenshots/", import.meta.url).pathname : null;
const email = "boss@example.com";
const password = "correct horse battery";
const xss = "<img src=x onerror=alert(1)>";
const pages = ["/", "/clients", "/tokens", "/mailings", "/mailings/1", "/outbox", "/admin"];

/** Polls a condition the test runner can read (page.waitForFunction would need eval, which the CSP forbids). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

for (const backend of backends()) {
  describe.skipIf(!haveChromium)(`[${backend}] §9 in Chromium${haveChromium ? "" : " (skipped: /usr/bin/chromium is not installed)"}`, () => {
    let server: Server;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let problems: string[];
    let dialogs: string[];

    beforeAll(async () => {
      mkdirSync(shots, { recursive: true });
      server = await startServer(backend);
      browser = await launch();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
      ({ page, problems, dialogs } = await watchedPage(context));
    });
    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    /** Checks the page the browser shows now: axe, console, width. */
    async function checkPage(label: string) {
      expect({ label, violations: await seriousViolations(page) }).toEqual({ label, violations: [] });
      expect({ label, problems }).toEqual({ label, problems: [] });
    }

    test("a fresh install leads to the first account; register → sign out → sign in", async () => {
      await page.goto(server.url + "/");
      expect(new URL(page.url()).pathname).toBe("/register");
      await checkPage("register");
      await page.getByLabel("E-mail").fill(email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Create account" }).click();
      await page.waitForURL(server.url + "/");
      await expect(page.getByRole("heading", { name: "Dashboard" }).isVisible()).resolves.toBe(true);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(server.url + "/login");
      await page.getByLabel("E-mail").fill(email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(server.url + "/");
      expect(await page.getByRole("link", { name: "Admin" }).count()).toBe(1);
      await checkPage("dashboard");
    });

    test("a form posted from another site is refused and changes nothing", async () => {
      // Another site (localhost vs 127.0.0.1 are different sites) whose page posts a form to ours.
      const evilPort = freePort();
      const evil = Bun.serve({
        port: evilPort,
        hostname: "127.0.0.1",
        fetch: () =>
          new Response(
            `<!doctype html><form id="f" method="post" action="${server.url}/tokens"><input name="name" value="forged"></form><script>document.getElementById("f").submit()</script>`,
            { headers: { "content-type": "text/html" } },
          ),
      });
      try {
        const other = await context.newPage();
        const answered = other.waitForResponse((r) => r.url() === `${server.url}/tokens` && r.request().method() === "POST");
        await other.goto(`http://localhost:${evilPort}/`);
        expect((await answered).status()).toBe(403);
        await other.close();
      } finally {
        evil.stop(true);
      }
      await page.goto(server.url + "/tokens");
      expect(await page.getByText("forged").count()).toBe(0);
    });

    test("clients: add (a tag of markup shows literally, nothing runs), validation beside the field, search, edit inline, delete", async () => {
      await page.goto(server.url + "/clients");
      const add = () => page.getByRole("region", { name: "Add a client" });
      await add().getByLabel("Phone").fill("12345");
      await add().getByLabel("Tag").fill("kept");
      await page.getByRole("button", { name: "Add a client" }).click();
      await page.locator("#new-phone_number-error").waitFor();
      expect(await add().getByLabel("Phone").inputValue()).toBe("12345");
      expect(await add().getByLabel("Tag").inputValue()).toBe("kept");
      await add().getByLabel("Phone").fill("+7 (910) 145-90-28");
      await add().getByLabel("Tag").fill(xss);
      await add().getByLabel("Time zone").fill("Europe/Moscow");
      await page.getByRole("button", { name: "Add a client" }).click();
      await page.getByText("Client 79101459028 added.").waitFor();
      expect(await page.locator("td.tag").first().textContent()).toBe(xss);
      expect(await page.locator("td.tag img").count()).toBe(0);
      for (const phone of ["79201112233", "79302223344"]) {
        await add().getByLabel("Phone").fill(phone);
        await page.getByRole("button", { name: "Add a client" }).click();
        await page.getByText(`Client ${phone} added.`).waitFor();
      }
      await page.getByLabel("Phone contains").fill("9201");
      await eventually("one row", async () => (await page.locator("#client-list tbody tr").count()) === 1);
      expect(new URL(page.url()).searchParams.get("q")).toBe("9201");
      await page.getByRole("button", { name: "Edit 79201112233" }).click();
      await page.getByLabel("Tag").last().waitFor();
      await page.locator("tr.editing input[name=tag]").fill("gold");
      await page.getByRole("button", { name: "Save" }).click();
      await page.locator("tr:not(.editing) td.tag", { hasText: "gold" }).waitFor();
      await page.getByRole("button", { name: "Delete 79201112233" }).click();
      await eventually("no row", async () => (await page.locator("#client-list tbody tr").count()) === 0);
      expect(dialogs.filter((d) => !d.startsWith("confirm"))).toEqual([]);
      await page.goto(server.url + "/clients");
      expect(await page.locator("#client-list tbody tr").count()).toBe(2);
      // Import a CSV: checked first, then confirmed; the report names the rejected line.
      await page.getByLabel("CSV file").setInputFiles({
        name: "clients.csv",
        mimeType: "text/csv",
        buffer: Buffer.from("phone_number,tag,timezone\n79401112233,csv,Asia/Vladivostok\nbad,x,UTC\n"),
      });
      await page.getByRole("button", { name: "Check the file" }).click();
      await page.getByText("2 rows, 1 of them with a valid phone number.").waitFor();
      await page.getByRole("button", { name: "Import", exact: true }).click();
      await page.getByText("1 added, 0 updated, 0 unchanged, 1 rejected.").waitFor();
      expect(await page.locator("#import-box tbody tr").count()).toBe(1);
      await checkPage("clients import report");
      await page.goto(server.url + "/clients");
      expect(await page.locator("#client-list tbody tr").count()).toBe(3);
      await checkPage("clients");
    });

    test("tokens: create shows the secret once, revoke after confirming", async () => {
      await page.goto(server.url + "/tokens");
      await page.getByLabel("Name").fill("crm");
      await page.getByRole("button", { name: "Create token" }).click();
      const secret = await page.getByLabel(/Secret/).inputValue();
      expect(secret).toStartWith("nst_");
      const api = await fetch(`${server.url}/api/v1/clients?limit=1`, { headers: { authorization: `Bearer ${secret}` } });
      expect(api.status).toBe(200);
      await checkPage("tokens");
      await page.goto(server.url + "/tokens");
      expect(await page.content()).not.toContain(secret);
      await page.getByRole("button", { name: "Revoke: crm" }).click();
      await page.getByText(/^revoked /).waitFor();
      expect((await fetch(`${server.url}/api/v1/clients?limit=1`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401);
    });

    test("the dashboard counts a running mailing live, without a reload, and stops polling when done", async () => {
      await page.goto(server.url + "/tokens");
      await page.getByLabel("Name").fill("e2e");
      await page.getByRole("button", { name: "Create token" }).click();
      const secret = await page.getByLabel(/Secret/).inputValue();
      await page.goto(server.url + "/");
      expect(await page.locator("#live[hx-trigger]").count()).toBe(0);
      const now = new Date();
      const wall = (d: Date) => d.toISOString().slice(0, 19);
      const created = await fetch(`${server.url}/api/v1/mailings`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify({ text: xss, start_time: wall(new Date(now.getTime() - 86_400_000)), end_time: wall(new Date(now.getTime() + 86_400_000)) }),
      });
      expect(created.status).toBe(201);
      // The sandbox sends both clients within a tick or two; the page started without polling, so load it once.
      await page.reload();
      const sent = page.locator('[data-status="sent"]');
      await eventually("3 sent (every client)", async () => (await sent.textContent())?.trim() === "3");
      expect(await sent.textContent()).toBe("3");
      await eventually("polling to stop", async () => (await page.locator("#live[hx-trigger]").count()) === 0);
      expect(dialogs.filter((d) => !d.startsWith("confirm"))).toEqual([]);
      await checkPage("dashboard with a mailing");
    });

    test("a mailing created through the form reaches `sent` without a reload and finishes; another is paused, resumed, cancelled, deleted", async () => {
      await page.goto(server.url + "/mailings");
      const form = page.getByRole("region", { name: "New mailing" });
      await form.getByLabel("Text").fill("");
      await page.getByRole("button", { name: "Create mailing" }).click();
      await page.locator("#m-text-error").waitFor();
      const wall = (ms: number) => new Date(ms).toISOString().slice(0, 16);
      await page.goto(server.url + "/mailings");
      await form.getByLabel("Text").fill(`Sale ${xss}`);
      await form.getByLabel("Start", { exact: true }).fill(wall(Date.now() - 86_400_000));
      await form.getByLabel("End", { exact: true }).fill(wall(Date.now() + 86_400_000));
      await form.getByLabel("Operator codes").fill("910, 930");
      // The time-zone preview follows the form as it is typed.
      await page.getByText("2 clients match.").waitFor();
      // A test send of the typed text to one phone, through the sandbox: shown beside the form, nothing typed lost.
      await form.getByLabel("Phone for a test").fill("+7 999 000-00-01");
      await page.getByRole("button", { name: "Send a test" }).click();
      await page.locator("#test-send-result", { hasText: "Sent to 79990000001 through sandbox." }).waitFor();
      expect(await form.getByLabel("Operator codes").inputValue()).toBe("910, 930");
      await form.getByLabel("Phone for a test").fill("");
      expect(await page.locator("#zone-preview tbody tr").count()).toBe(2);
      if (backend === "pglite" && docsShots) await page.screenshot({ path: `${docsShots}mailing-form-en-1280.png`, fullPage: true });
      await page.getByRole("button", { name: "Create mailing" }).click();
      await page.waitForURL(/\/mailings\/\d+$/);
      const url = page.url();
      expect(await page.locator(".mailing-text").textContent()).toBe(`Sale ${xss}`);
      const sent = page.locator('#mailing-live [data-status="sent"]');
      await eventually("both clients sent", async () => (await sent.textContent())?.trim() === "2");
      expect(page.url()).toBe(url);
      // Nothing left to send: the counts stop polling; the mailing stays running (and says until
      // when) because its window is still open for clients added later (SPEC §4).
      await page.locator(".mailing-idle").waitFor();
      expect(await page.locator(".badge-running").count()).toBe(1);
      await eventually("polling to stop", async () => (await page.locator("#mailing-live[hx-trigger]").count()) === 0);
      // Its sends drawn as a chart, updated by the polling without a reload.
      expect(await page.locator("#mailing-chart rect.chart-bar").count()).toBeGreaterThan(0);
      await checkPage("mailing");
      await page.goto(server.url + "/outbox");
      // the two sends and the test send
      expect(await page.locator("td.message-text", { hasText: `Sale ${xss}` }).count()).toBe(3);
      await page.goto(url);
      // Its messages as CSV, from the page.
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export all messages (CSV)" }).click()]);
      expect(download.suggestedFilename()).toMatch(/^mailing-\d+-messages\.csv$/);
      await page.getByRole("button", { name: "Delete" }).click();
      await page.waitForURL(server.url + "/mailings");
      expect(await page.getByText(`Sale ${xss}`).count()).toBe(0);
      // A mailing that starts in two days: pause, resume, cancel, delete.
      await form.getByLabel("Text").fill("Later");
      await form.getByLabel("Start", { exact: true }).fill(wall(Date.now() + 2 * 86_400_000));
      await form.getByLabel("End", { exact: true }).fill(wall(Date.now() + 3 * 86_400_000));
      await page.getByRole("button", { name: "Create mailing" }).click();
      await page.waitForURL(/\/mailings\/\d+$/);
      // Edit it from its page: a field error first, then a change.
      await page.getByText("Edit mailing").click();
      const edit = page.locator("#mailing-form");
      await edit.getByLabel("End", { exact: true }).fill(wall(Date.now() + 86_400_000));
      await page.getByRole("button", { name: "Save changes" }).click();
      await page.locator("#m-end_time-error").waitFor();
      expect(await edit.getByLabel("End", { exact: true }).inputValue()).toBe(wall(Date.now() + 86_400_000).slice(0, 16));
      await checkPage("mailing edit error");
      await edit.getByLabel("Text").fill("Later, edited");
      await edit.getByLabel("End", { exact: true }).fill(wall(Date.now() + 3 * 86_400_000));
      await page.getByRole("button", { name: "Save changes" }).click();
      await page.locator(".mailing-text", { hasText: "Later, edited" }).waitFor();
      if (backend === "pglite" && docsShots) {
        await page.getByText("Edit mailing").click();
        await page.screenshot({ path: `${docsShots}mailing-edit-en-1280.png`, fullPage: true });
      }
      await page.getByRole("button", { name: "Pause" }).click();
      await page.locator(".badge-paused").first().waitFor();
      await page.getByRole("button", { name: "Resume" }).click();
      await page.locator(".badge-scheduled").first().waitFor();
      await page.getByRole("button", { name: "Cancel mailing" }).click();
      await page.locator(".badge-cancelled").first().waitFor();
      await page.getByRole("button", { name: "Delete" }).click();
      await page.waitForURL(server.url + "/mailings");
      expect(await page.getByText("Later, edited").count()).toBe(0);
      expect(dialogs.filter((d) => !d.startsWith("confirm"))).toEqual([]);
      await checkPage("mailings");
    });

    test("Russian and English: the switch changes the language and remembers it", async () => {
      await page.goto(server.url + "/clients");
      await page.getByRole("button", { name: "RU" }).click();
      await page.getByRole("heading", { name: "Клиенты" }).waitFor();
      expect(await page.getAttribute("html", "lang")).toBe("ru");
      await page.goto(server.url + "/");
      await page.getByRole("heading", { name: "Сводка" }).waitFor();
      await checkPage("dashboard ru");
      await page.getByRole("button", { name: "EN" }).click();
      await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    });

    test("every page in both languages: no serious axe violation, no console error, no sideways scroll at 390 px; screenshots", async () => {
      for (const lang of ["en", "ru"] as const) {
        await page.goto(server.url + "/");
        await page.getByRole("button", { name: lang.toUpperCase() }).click();
        await page.waitForLoadState();
        for (const width of [1280, 390]) {
          await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
          for (const path of pages) {
            await page.goto(server.url + path);
            const name = `${path === "/" ? "dashboard" : path.slice(1).replace("/", "-")}-${lang}-${width}`;
            await page.screenshot({ path: `${shots}/${backend}-${name}.png`, fullPage: true });
            expect({ path, width, sideways: await scrollsSideways(page) }).toEqual({ path, width, sideways: false });
            await checkPage(`${path} ${lang} ${width}`);
            if (docsShots && backend === "pglite" && width === 1280 && (lang === "en" || path === "/") && ["/", "/clients", "/tokens", "/mailings", "/mailings/1"].includes(path)) {
              await page.screenshot({ path: `${docsShots}${name}.png`, fullPage: true });
            }
          }
        }
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    test("sign-in pages in both languages pass axe at both widths", async () => {
      const anonymous = await browser.newContext({ locale: "ru-RU", extraHTTPHeaders: { "accept-language": "ru-RU,ru;q=0.9" } });
      const watched = await watchedPage(anonymous);
      for (const width of [1280, 390]) {
        await watched.page.setViewportSize({ width, height: 844 });
        for (const path of ["/login", "/register"]) {
          await watched.page.goto(server.url + path);
          expect(await watched.page.getAttribute("html", "lang")).toBe("ru");
          expect(await scrollsSideways(watched.page)).toBe(false);
          expect(await seriousViolations(watched.page)).toEqual([]);
          await watched.page.screenshot({ path: `${shots}/${backend}${path.replace("/", "-")}-ru-${width}.png`, fullPage: true });
        }
      }
      expect(watched.problems).toEqual([]);
      await anonymous.close();
    });

    test("without JavaScript a plain form post shows its field errors, and nothing is logged", async () => {
      const plain = await browser.newContext({ javaScriptEnabled: false });
      const { page: p, problems: plainProblems } = await watchedPage(plain);
      await p.goto(server.url + "/login");
      await p.getByLabel("E-mail").fill(email);
      await p.getByLabel("Password").fill(password);
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.waitForURL(server.url + "/");
      await p.goto(server.url + "/mailings");
      await p.getByRole("button", { name: "Create mailing" }).click();
      await p.locator("#m-text-error").waitFor();
      expect(plainProblems).toEqual([]);
      await plain.close();
    });

    test("five failed sign-ins for one e-mail → the sixth is refused with 429", async () => {
      const fresh = await browser.newContext();
      const { page: p, problems: loginProblems } = await watchedPage(fresh);
      const statuses: string[] = [];
      p.on("response", (r) => {
        if (r.url() === `${server.url}/login` && r.request().method() === "POST") statuses.push(r.headers()["x-status"] ?? String(r.status()));
      });
      for (let i = 0; i < 6; i++) {
        await p.goto(server.url + "/login");
        await p.getByLabel("E-mail").fill(email);
        await p.getByLabel("Password").fill(i < 5 ? `wrong password ${i}` : password);
        await p.getByRole("button", { name: "Sign in" }).click();
        await p.waitForLoadState();
      }
      // The page shows the form again with the reason: 200 to the browser, the status in X-Status.
      expect(statuses).toEqual(["401", "401", "401", "401", "401", "429"]);
      await p.getByText(/Too many failed sign-ins/).waitFor();
      expect(loginProblems).toEqual([]);
      await fresh.close();
    });

  });
}
