/**
 * /metrics while the database fails (issue 13, item 1): the due backlog is counted in the
 * background, and a failure there must not become an unhandled rejection (which ends a Bun process);
 * a scrape whose database reads fail still answers with the process and HTTP figures (the ones an
 * operator needs during an outage), and says the database figures are stale.
 */
import { afterEach, expect, test } from "bun:test";
import { FixedClock } from "../../src/clock";
import type { Database } from "../../src/db/client";
import { Metrics } from "../../src/ops/metrics";

/** A database whose statements succeed until `failing` is set. */
function flakyDatabase() {
  const state = { failing: false };
  const database = {
    rows: async () => {
      await Promise.resolve();
      if (state.failing) throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
      return [{ status: "sent", n: 3 }];
    },
  } as unknown as Database;
  return { database, state };
}

const leaked: unknown[] = [];
const onRejection = (reason: unknown) => void leaked.push(reason);
process.on("unhandledRejection", onRejection);
afterEach(() => void leaked.splice(0));

test("a failing background backlog count is no unhandled rejection; the scrape still answers", async () => {
  const { database, state } = flakyDatabase();
  const metrics = new Metrics(database, new FixedClock("2026-12-01T00:00:00Z"), 0);
  metrics.request("GET", "/healthz", 200, 0.001);
  expect(await metrics.render()).toContain('notification_messages{status="sent"} 3');
  state.failing = true;
  const text = await metrics.render();
  // the figures read before stay, flagged stale; the process and HTTP figures are there
  expect(text).toContain('notification_messages{status="sent"} 3');
  expect(text).toContain("notification_metrics_database_ok 0");
  expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1');
  expect(text).toContain("process_resident_memory_bytes");
  // let the background count settle
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  expect(leaked).toEqual([]);
  state.failing = false;
  expect(await metrics.render()).toContain("notification_metrics_database_ok 1");
});
