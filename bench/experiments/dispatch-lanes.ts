/**
 * Issue 4, target 1 — a PROTOTYPE, not the service: what the dispatch would cost if a claim were a
 * row lock held by an open transaction ("lane") instead of a `sending` row version (SPEC §6).
 *
 * Each lane, on its own connection, repeatedly: BEGIN; SELECT … FOR UPDATE SKIP LOCKED (up to
 * `lane-size` due rows); sends them all through the service's HttpGateway; one UPDATE writes every
 * result (status, attempts + 1, sent_at); COMMIT. A message is written once instead of twice, and a
 * crash rolls its lane back, so its rows are due again at once (no lease to wait out). At most
 * lanes × lane-size sends are in flight, which is also the bound on repeats after a crash.
 * What it leaves out (see BENCHMARKS.md): stragglers holding a lane, `sending` never being stored,
 * pause/cancel checks and send windows, and lock waits of API writes on the rows of a lane.
 *
 *   bun bench/experiments/dispatch-lanes.ts --gateway http://127.0.0.1:4710 --n 200000 --lanes 4 --lane-size 125
 */
import postgres from "postgres";
import { intArray, textArray } from "../../src/db/arrays";
import { HttpGateway } from "../../src/gateway/http";
import { arg, check, cpuMeter, freshPostgres, gatewayAt, main, rssMonitor, seedClientsAndMailing, seedDueMessages, statusCounts } from "../support";

await main(async () => {
  const n = Number(arg("n", "2000"));
  const lanes = Number(arg("lanes", "4"));
  const laneSize = Number(arg("lane-size", "125"));
  const gateway = gatewayAt(arg("gateway", "http://127.0.0.1:4710"));
  const gatewayPid = Number(arg("gateway-pid", "0")) || null;
  const fresh = await freshPostgres({ max: 2 });
  const client = postgres(fresh.url, { max: lanes, onnotice: () => {} });
  try {
    const mailingId = await seedClientsAndMailing(fresh.database, n);
    await seedDueMessages(fresh.database, mailingId, n);
    await fresh.database.rows((await import("drizzle-orm")).sql`vacuum analyze clients, mailings, messages, mailing_counts`);
    await gateway.reset();
    const http = new HttpGateway({ baseUrl: gateway.url, token: "bench-token", timeoutMs: 10_000 });
    const text = "Bench message";

    let sent = 0;
    const lane = async () => {
      for (;;) {
        const got = await client.begin(async (tx) => {
          const rows = await tx<{ id: number; phone_number: string }[]>`
            select id, phone_number from messages
            where status in ('scheduled', 'retrying') and next_attempt_at <= now()
            order by next_attempt_at limit ${laneSize} for update skip locked`;
          if (rows.length === 0) return 0;
          const results = await Promise.all(rows.map((r) => http.send({ id: r.id, phone: r.phone_number, text })));
          await tx.unsafe(
            `update messages m set status = r.status, attempts = m.attempts + 1,
               sent_at = case when r.status = 'sent' then now() else m.sent_at end,
               last_error = r.error, updated_at = now()
             from unnest($1::int[], $2::text[], $3::text[]) as r(id, status, error) where m.id = r.id`,
            [
              intArray(rows.map((r) => r.id)),
              textArray(results.map((x) => (x.outcome === "sent" ? "sent" : x.outcome === "failed" ? "failed" : "retrying"))),
              textArray(results.map((x) => (x.outcome === "sent" ? null : x.error))),
            ],
            { prepare: true },
          );
          return rows.length;
        });
        if (got === 0) return;
        sent += got;
      }
    };

    const rss = rssMonitor(process.pid, 25);
    const cpu = cpuMeter(gatewayPid, fresh.name);
    const started = performance.now();
    await Promise.all(Array.from({ length: lanes }, lane));
    const ms = performance.now() - started;
    const rssPeakMb = rss.stop().peakMb;
    const cpuS = cpu.stop();

    const counts = await statusCounts(fresh.database);
    const received = await gateway.received();
    check(counts.sent === n && Object.keys(counts).length === 1, `every message sent: ${JSON.stringify(counts)}`);
    check(received.total === n && received.unique === n, `gateway received each id once: ${JSON.stringify({ total: received.total, unique: received.unique })}`);
    check(sent === n, `lanes counted ${sent}`);
    return { n, lanes, laneSize, ms: Math.round(ms), perSecond: Math.round((n / ms) * 1000), rssPeakMb, cpuS };
  } finally {
    await client.end({ timeout: 5 });
    await fresh.drop();
  }
});
