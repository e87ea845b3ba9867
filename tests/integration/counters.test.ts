import { afterEach, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

/**
 * The trigger-maintained counters must always equal a full count of the messages table. Both are
 * read in one statement, so from one snapshot: a write by the dispatcher (woken by a PATCH, say)
 * between two separate reads would make exact counters look wrong.
 */
async function expectCountersExact(e: TestEngine) {
  type Row = { mailing_id: number; status: string; n: number };
  const [both] = await e.database.rows<{ counted: Row[] | string | null; kept: Row[] | string | null }>(sql`
    select
      (select json_agg(x order by x.mailing_id, x.status) from (
         select mailing_id, status, count(*)::int as n from messages group by 1, 2) x) as counted,
      (select json_agg(y order by y.mailing_id, y.status) from (
         select mailing_id, status, sum(n)::int as n from mailing_counts group by 1, 2 having sum(n) <> 0) y) as kept`);
  const parse = (v: Row[] | string | null): Row[] => (typeof v === "string" ? JSON.parse(v) : v) ?? [];
  expect(parse(both!.kept)).toEqual(parse(both!.counted));
}

for (const backend of backends()) {
  describe(`[${backend}] §5 statistics counters`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("counters stay exact through planning, sending, retries, failures, re-planning and deletes", async () => {
      e = await testEngine(backend, { now: "2026-12-01T10:00:00Z", gateway: { failRate: 0.3, rejectRate: 0.2, random: seeded(7) } });
      const ids: number[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await e.request("POST", "/api/v1/clients", {
          phone_number: `791000000${String(i).padStart(2, "0")}`,
          timezone: ["UTC", "Europe/Moscow", "America/New_York"][i % 3],
          tag: i % 2 ? "a" : "b",
        });
        ids.push(r.body.id);
      }
      const times = { start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" };
      const m1 = (await e.request("POST", "/api/v1/mailings", { text: "one", ...times })).body.id;
      const m2 = (await e.request("POST", "/api/v1/mailings", { text: "two", ...times, tags_filter: ["a"] })).body.id;
      await e.dispatcher.drain();
      await expectCountersExact(e);
      e.clock.advance(300);
      await e.dispatcher.drain();
      await expectCountersExact(e);
      await e.request("PATCH", `/api/v1/mailings/${m2}`, { tags_filter: ["b"] });
      await e.request("DELETE", `/api/v1/clients/${ids[5]}`);
      await e.request("PATCH", `/api/v1/clients/${ids[6]}`, { timezone: "Asia/Tokyo" });
      await expectCountersExact(e);
      await e.request("POST", `/api/v1/mailings/${m1}/cancel`);
      await expectCountersExact(e);
      await e.request("DELETE", `/api/v1/mailings/${m2}`);
      await expectCountersExact(e);
      e.clock.set("2026-12-02T12:00:00Z");
      await e.dispatcher.drain();
      await expectCountersExact(e);
      const stats = (await e.request("GET", "/api/v1/stats")).body;
      const byStatus = Object.values(stats.messages as Record<string, number>).reduce((a, b) => a + b, 0);
      expect(byStatus).toBe(stats.by_mailing.reduce((a: number, m: { total: number }) => a + m.total, 0));
      expect(stats.mailings).toBe(1);
    });
  });
}

/** A small deterministic generator so the failure pattern is the same on every run. */
function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}
