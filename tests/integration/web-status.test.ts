/**
 * SPEC §9 "no console errors": a form shown again with its errors (failed sign-in, field errors,
 * rate limit) answers a browser 200 with the status in X-Status — Chromium logs every 4xx page load
 * as a console error — while other clients keep the real status.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { backends } from "../support/db";
import { Browser, type WebApp, webApp } from "../support/web";

setDefaultTimeout(60_000);

const page = { "sec-fetch-dest": "document", "sec-fetch-mode": "navigate" };

for (const backend of backends()) {
  describe(`[${backend}] §9 statuses of forms shown again`, () => {
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

    test("a failed sign-in: 200 + X-Status 401 to a page load, 401 to anything else; the limit likewise 429", async () => {
      const other = new Browser(app);
      const loaded = await other.post("/login", { email: "boss@example.com", password: "wrong one" }, page);
      expect([loaded.status, loaded.headers.get("x-status")]).toEqual([200, "401"]);
      expect(loaded.text).toContain("Wrong e-mail or password");
      const script = await other.post("/login", { email: "boss@example.com", password: "wrong two" });
      expect([script.status, script.headers.get("x-status")]).toEqual([401, null]);
      for (let i = 0; i < 3; i++) await other.post("/login", { email: "boss@example.com", password: "wrong" });
      const limited = await other.post("/login", { email: "boss@example.com", password: "wrong" }, page);
      expect([limited.status, limited.headers.get("x-status")]).toEqual([200, "429"]);
      expect(limited.headers.get("retry-after")).not.toBeNull();
    });

    test("field errors of a plain form post and of htmx: 200 + X-Status 422; a script still sees 422", async () => {
      const plain = await b.post("/mailings", { text: "", start_time: "", end_time: "", _csrf: csrf }, page);
      expect([plain.status, plain.headers.get("x-status")]).toEqual([200, "422"]);
      expect(plain.text).toContain('id="m-text-error"');
      const htmx = await b.post("/mailings", { text: "", start_time: "", end_time: "", _csrf: csrf }, { "hx-request": "true" });
      expect([htmx.status, htmx.headers.get("x-status")]).toEqual([200, "422"]);
      expect((await b.post("/mailings", { text: "", start_time: "", end_time: "", _csrf: csrf })).status).toBe(422);
    });

    test("real errors keep their status for a page load (404, 403)", async () => {
      expect((await b.get("/mailings/424242", page)).status).toBe(404);
      expect((await b.post("/mailings", { text: "x", _csrf: "" }, page)).status).toBe(403);
    });
  });
}
