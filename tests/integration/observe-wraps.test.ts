/**
 * Issue 13 × issue 15: answers that the Idempotency-Key wrap gives itself (a replay, a 422 for a bad
 * key) carry an X-Request-Id and get their request log line with the route template, like every
 * other answer.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { backends } from "../support/db";
import { auth, type TestApp, testApp } from "../support/app";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] request logs and the Idempotency-Key wrap`, () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await testApp(backend);
    });
    afterAll(() => app.close());

    const post = (key: string, id: string) =>
      app.request("POST", "/api/v1/clients", { phone_number: "79101112233" }, { ...auth, "idempotency-key": key, "x-request-id": id });
    const logged = (id: string) => app.logger.lines.find((l) => l.msg === "request" && l.request_id === id);

    test("the first answer, its replay and a bad key are each logged and carry their request id", async () => {
      const first = await post("k-1", "first-call");
      expect(first.status).toBe(201);
      const replay = await post("k-1", "replayed-call");
      expect(replay.status).toBe(201);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      const bad = await post("k\u0001", "bad-key-call");
      expect(bad.status).toBe(422);
      for (const [answer, id] of [[first, "first-call"], [replay, "replayed-call"], [bad, "bad-key-call"]] as const) {
        expect(answer.headers.get("x-request-id")).toBe(id);
        expect(logged(id)).toMatchObject({ method: "POST", status: answer.status });
      }
      // The wrap's own answers name their route too (the three keyed paths are their own templates).
      for (const id of ["first-call", "replayed-call", "bad-key-call"]) expect(logged(id)!.route).toBe("/api/v1/clients");
    });
  });
}
