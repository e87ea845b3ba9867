import { afterEach, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { foldCounters } from "../../src/stats/fold";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

/**
 * The trigger-maintained counters (the folded base and the deltas not yet folded, drizzle/0007) must
 * always equal a full count of the messages table, folded or not. Both are
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
         select mailing_id, status, sum(n)::int as n from mailing_counts_live group by 1, 2 having sum(n) <> 0) y) as kept`);
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
      expect(await foldCounters(e.database)).toBeGreaterThan(0);
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
      await foldCounters(e.database);
      await expectCountersExact(e);
      const left = await e.database.rows<{ n: number }>(sql`select count(*)::int as n from mailing_counts_live where mailing_id = ${m2}`);
      expect(left).toEqual([{ n: 0 }]);
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

for (const backend of backends()) {
  describe(`[${backend}] §5 statistics counters: deltas and folds (drizzle/0007)`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("a fold moves the deltas into one base row per mailing and status and empties them; counts stay exact", async () => {
      e = await testEngine(backend, { now: "2026-12-01T10:00:00Z", gateway: { failRate: 0.2, random: seeded(11) } });
      for (let i = 0; i < 12; i++) await e.client(`7920000${String(i).padStart(4, "0")}`);
      const times = { start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" };
      for (let m = 0; m < 3; m++) await e.mailing({ text: `m${m}`, ...times });
      await e.dispatcher.drain();
      const deltas = async () => (await e.database.rows<{ n: number }>(sql`select count(*)::int as n from mailing_count_deltas`))[0]!.n;
      expect(await deltas()).toBeGreaterThan(0);
      await expectCountersExact(e);
      const folded = await foldCounters(e.database);
      expect(folded).toBeGreaterThan(0);
      expect(await deltas()).toBe(0);
      await expectCountersExact(e);
      // One base row per (mailing, status) with a count, nothing per statement.
      const base = await e.database.rows<{ rows: number; keys: number }>(
        sql`select count(*)::int as rows, count(distinct (mailing_id, status))::int as keys from mailing_counts`,
      );
      expect(base[0]!.rows).toBe(base[0]!.keys);
      expect(await foldCounters(e.database)).toBe(0); // nothing left to fold
      e.clock.advance(300);
      await e.dispatcher.drain();
      await expectCountersExact(e);
      await foldCounters(e.database);
      await expectCountersExact(e);
    });

    if (backend === "postgres") {
      test("folds while workers write, and a fold kept waiting by a transaction gives up: counts stay exact", async () => {
        e = await testEngine(backend, { now: "2026-12-01T10:00:00Z", dispatcher: { concurrency: 20, claimBatch: 10 } });
        for (let i = 0; i < 300; i++) await e.client(`7921000${String(i).padStart(4, "0")}`);
        const times = { start_time: "2026-12-01T09:00:00", end_time: "2026-12-01T21:00:00" };
        for (let m = 0; m < 4; m++) await e.mailing({ text: `m${m}`, ...times });
        let sending = true;
        const folds: number[] = [];
        const folding = (async () => {
          while (sending) folds.push(await foldCounters(e.database));
        })();
        await e.dispatcher.drain();
        sending = false;
        await folding;
        expect(folds.some((n) => n > 0)).toBe(true);
        await expectCountersExact(e);
        const sent = await e.database.rows<{ n: number }>(sql`select coalesce(sum(n), 0)::int as n from mailing_counts_live where status = 'sent'`);
        expect(sent[0]!.n).toBe(1200);
        // A transaction holding the deltas (a writer that has not committed) makes the fold skip, not wait.
        await e.request("POST", "/api/v1/mailings", { text: "late", ...times });
        await e.database.db.transaction(async (tx) => {
          await tx.execute(sql`insert into mailing_count_deltas (mailing_id, status, n) values (1, 'sent', 0)`);
          expect(await foldCounters(e.database, 50)).toBe(-1);
        });
        expect(await foldCounters(e.database)).toBeGreaterThan(0);
        await expectCountersExact(e);
      });

      test("counter rows do not pile up dead versions without vacuum: 200 commits over 20 mailings leave mailing_counts within 2x a compact copy", async () => {
        e = await testEngine(backend, { now: "2026-12-01T10:00:00Z" });
        const d = e.database;
        await d.rows(sql`alter table mailing_counts set (autovacuum_enabled = false)`);
        await d.rows(sql`alter table mailing_count_deltas set (autovacuum_enabled = false)`);
        await d.rows(sql`insert into clients (phone_number, operator_code, tag, timezone)
          select '7922' || lpad(g::text, 7, '0'), '922', '', 'UTC' from generate_series(1, 100) g`);
        await d.rows(sql`insert into mailings (text, start_time, end_time, starts_at, ends_at)
          select 'm' || g, '2026-12-01T09:00:00', '2026-12-01T21:00:00', '2026-11-30T19:00:00Z', '2026-12-02T09:00:00Z'
          from generate_series(1, 20) g`);
        await d.rows(sql`insert into messages (mailing_id, client_id, phone_number, due_at, expires_at, next_attempt_at)
          select m.id, c.id, c.phone_number, now(), now() + interval '1 day', now()
          from mailings m cross join clients c`);
        await foldCounters(d);
        // As claims and group commits do: every statement moves some messages of every mailing.
        for (let round = 0; round < 100; round++) {
          const from = round % 2 === 0 ? "scheduled" : "sending";
          const to = round % 2 === 0 ? "sending" : "scheduled";
          await d.rows(sql`update messages set status = ${to} where status = ${from} and client_id % 10 = ${round % 10}`);
          await d.rows(sql`update messages set status = ${to} where status = ${from} and client_id % 10 <> ${round % 10}`);
          if (round % 10 === 9) await foldCounters(d);
        }
        await foldCounters(d);
        await expectCountersExact(e);
        const [sizes] = await d.rows<{ used: number; compact: number }>(sql`
          select pg_relation_size('mailing_counts')::int + pg_indexes_size('mailing_counts')::int
                 + pg_relation_size('mailing_count_deltas')::int as used,
                 (select count(*) from mailing_counts)::int as compact`);
        await d.rows(sql`create temp table compact_counts (like mailing_counts including all)`);
        await d.rows(sql`insert into compact_counts select * from mailing_counts`);
        const [copy] = await d.rows<{ bytes: number }>(
          sql`select (pg_relation_size('compact_counts') + pg_indexes_size('compact_counts'))::int as bytes`,
        );
        await d.rows(sql`drop table compact_counts`);
        expect(sizes!.used).toBeLessThanOrEqual(2 * copy!.bytes);
      });
    }
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
