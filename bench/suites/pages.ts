/**
 * Issue 11, item 5 — every UI page rendered on big tables: 1,000,000 clients and 10,000,000
 * messages (1,000,000 × 10 mailings; quick: 2,000 × 5) on PostgreSQL, filled set-based through
 * bench/support/fill.ts (secondary indexes of messages dropped while loading and rebuilt, then
 * VACUUM ANALYZE; send_minutes filled from the sent rows as its migration does). Each page is requested
 * in-process through app.handle with a signed-in session, sequentially after a warm-up; p50/p95
 * per page, target p95 ≤ 50 ms.
 *
 *   bun bench/suites/pages.ts [--quick] [--clients 1000000] [--mailings 10] [--requests 100]
 */
import { createApp } from "../../src/app";
import { systemClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { bulkLoad, check, fillClients, flag, freshPostgres, percentile, printTable, round1, standalone, verdict, type SuiteOptions } from "../support";

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  const clients = options.quick ? 2_000 : flag(argv, "clients", 1_000_000);
  const mailings = options.quick ? 5 : flag(argv, "mailings", 10);
  const requests = options.quick ? 10 : flag(argv, "requests", 100);
  const db = await freshPostgres({ max: 4 });
  try {
    const { loadS, indexS } = await bulkLoad(
      db,
      async () => {
        await fillClients(db, clients);
        // Running mailings (until 2099), started an hour ago.
        await db.sql.unsafe(`
          insert into mailings (text, start_time, end_time, starts_at, ends_at, tags_filter, codes_filter)
          select 'Bench mailing ' || g, '2025-06-01T09:00:00', '2099-12-30T21:00:00', '2025-05-31T19:00:00Z', '2099-12-31T09:00:00Z', '{}', '{}'
          from generate_series(1, ${mailings}) g`);
        for (let m = 1; m <= mailings; m++) {
          // Mostly sent over the last hour (the charts have something to draw), some failed, the rest waiting.
          await db.sql.unsafe(`
            insert into messages (mailing_id, client_id, phone_number, status, attempts, due_at, expires_at, next_attempt_at, sent_at, last_error)
            select ${m}, c.id, c.phone_number, s.status, case when s.status = 'scheduled' then 0 else 1 end,
              now() - interval '1 hour', '2100-01-01T00:00:00Z', now() + interval '1 day',
              case when s.status = 'sent' then now() - (c.id % 3600) * interval '1 second' end,
              case when s.status = 'failed' then 'gateway answered 400' end
            from clients c cross join lateral (select case when (c.id::bigint * 7919 + ${m} * 104729) % 100 < 60 then 'sent'
              when (c.id::bigint * 7919 + ${m} * 104729) % 100 < 65 then 'failed' else 'scheduled' end as status) s`);
        }
        await db.sql.unsafe(`insert into send_minutes (mailing_id, minute, shard, n)
          select mailing_id, date_trunc('minute', sent_at), 0, count(*) from messages where status = 'sent' group by 1, 2`);
      },
      ["clients", "mailings", "messages", "mailing_counts", "send_minutes"],
    );

    const app = await createApp({ config: { adminApiKey: null }, database: db.database, clock: systemClock, logger: memoryLogger(), signals: silentSignals });
    const origin = "http://localhost";
    const registered = await app.handle(
      new Request(`${origin}/register`, {
        method: "POST",
        headers: { origin, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email: "bench@example.com", password: "correct horse battery" }).toString(),
      }),
    );
    const cookie = registered.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    check(cookie.includes("="), `no session cookie from /register (status ${registered.status})`);
    const pages = ["/", "/clients", "/clients?q=7900001", "/clients?tag=vip&operator_code=901", "/mailings", "/mailings/3", "/mailings/3?status=failed", "/tokens"];
    const rows = [];
    let ok = true;
    for (const path of pages) {
      const get = async () => {
        const t0 = performance.now();
        const response = await app.handle(new Request(`${origin}${path}`, { headers: { cookie } }));
        await response.text();
        check(response.status === 200, `${path} answered ${response.status}`);
        return performance.now() - t0;
      };
      for (let i = 0; i < 3; i++) await get();
      const times: number[] = [];
      for (let i = 0; i < requests; i++) times.push(await get());
      const p95 = percentile(times, 95);
      ok &&= p95 <= 50;
      rows.push({ figure: `${path} p50 / p95 ms`, value: `${round1(percentile(times, 50))} / ${round1(p95)}`, target: "p95 ≤ 50", verdict: verdict(options.quick, p95 <= 50) });
    }
    printTable(`pages: ${clients.toLocaleString("en")} clients, ${(clients * mailings).toLocaleString("en")} messages, ${requests} requests each (load ${round1(loadS + indexS)} s)`, rows);
    return { ok: options.quick || ok, clients, messages: clients * mailings, rows };
  } finally {
    await db.drop();
  }
}

if (import.meta.main) await standalone(run);
