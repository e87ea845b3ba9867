/** Which database errors become a 503 (src/http/unavailable.ts): "not now" yes, "wrong" never. */
import { describe, expect, test } from "bun:test";
import { databaseUnavailable, unavailableResponse } from "../../src/http/unavailable";
import { memoryLogger } from "../../src/ops/logger";

const wrapped = (cause: object) => Object.assign(new Error("Failed query: select …"), { cause });

describe("database unavailable → 503", () => {
  test("connection failures, shutdown, too many connections and timeouts are unavailability, even wrapped by Drizzle", () => {
    for (const code of ["ECONNREFUSED", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "ECONNRESET"]) {
      expect(databaseUnavailable(wrapped({ code }))).toBe(true);
    }
    for (const state of ["08006", "08001", "53300", "57P01", "57P03", "57014", "25P03"]) {
      expect(databaseUnavailable(wrapped({ code: state }))).toBe(true);
    }
  });

  test("errors of the request or the code are not: unique violation, syntax error, a plain bug", () => {
    for (const state of ["23505", "42601", "22P02", "42P01"]) expect(databaseUnavailable(wrapped({ code: state }))).toBe(false);
    expect(databaseUnavailable(new TypeError("x is undefined"))).toBe(false);
    expect(databaseUnavailable(null)).toBe(false);
  });

  test("an API caller gets a problem document, a browser a 503 page; both say when to retry", async () => {
    const error = { code: "ECONNREFUSED" };
    const apiAnswer = unavailableResponse(error, new Request("http://x/api/v1/clients"), memoryLogger());
    expect(apiAnswer.status).toBe(503);
    expect(apiAnswer.headers.get("retry-after")).toBe("2");
    expect(apiAnswer.headers.get("content-type")).toBe("application/problem+json");
    const pageAnswer = unavailableResponse(error, new Request("http://x/clients", { headers: { accept: "text/html", "accept-language": "ru" } }), memoryLogger());
    expect(pageAnswer.status).toBe(503);
    expect(pageAnswer.headers.get("retry-after")).toBe("2");
    expect(pageAnswer.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const html = await pageAnswer.text();
    expect(html).toContain("База данных сейчас недоступна");
    expect(html).toContain('<html lang="ru">');
  });
});
