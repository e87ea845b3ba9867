/**
 * Error log lines (500 and 503) name the route template, never the raw path: a path can carry a
 * secret (a webhook's path token, a link's token), and request logs must never hold one (issue 13,
 * item 2). The request's own log line and X-Request-Id tie the error to the request.
 */
import { expect, test } from "bun:test";
import { renderError } from "../../src/http/errors";
import { memoryLogger } from "../../src/ops/logger";

const secret = "whk_Zq8sEcReT0kEn55";
const request = () => new Request(`http://localhost/hooks/sms/${secret}?token=${secret}`, { method: "POST" });

test("a 500 is logged with the route template, not the path holding a token", async () => {
  const logger = memoryLogger();
  const response = renderError("UNKNOWN", new TypeError("x is undefined"), request(), logger.child({ route: "/hooks/sms/:token" }));
  expect(response.status).toBe(500);
  expect(logger.lines).toHaveLength(1);
  expect(logger.lines[0]).toMatchObject({ level: "error", msg: "unhandled error", route: "/hooks/sms/:token" });
  expect(JSON.stringify(logger.lines)).not.toContain(secret);
});

test("a 503 (database unreachable) is logged without the path either", async () => {
  const logger = memoryLogger();
  const outage = Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
  const response = renderError("UNKNOWN", outage, request(), logger.child({ route: "/hooks/sms/:token" }));
  expect(response.status).toBe(503);
  expect(logger.lines[0]).toMatchObject({ level: "warn", route: "/hooks/sms/:token" });
  expect(JSON.stringify(logger.lines)).not.toContain(secret);
});
