/** docs/grafana-dashboard.json stays true to the code: every metric it queries is one /metrics exports. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { FixedClock } from "../../src/clock";
import type { Database } from "../../src/db/client";
import { Metrics } from "../../src/ops/metrics";

test("the Grafana dashboard queries only exported metric families", async () => {
  const path = fileURLToPath(new URL("../../docs/grafana-dashboard.json", import.meta.url));
  const dashboard = JSON.parse(readFileSync(path, "utf8")) as { panels: { targets: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:notification|http|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ""))));
  const database = { rows: async () => [] } as unknown as Database;
  const text = await new Metrics(database, new FixedClock("2026-12-01T00:00:00Z")).render();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  expect(used.size).toBeGreaterThan(10);
  for (const name of used) expect(exported.has(name), name).toBe(true);
});
