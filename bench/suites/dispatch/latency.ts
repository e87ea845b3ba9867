/**
 * Issue 4, target 3: latency, with a Dispatcher started as the service starts it (Croner tick
 * `TICK`, default every second; `wake()` wired to the MailingService's signals like
 * tests/support/engine.ts) and an in-process fake gateway on a real socket.
 *
 * (i) ms from `MailingService.create()` (start in the past, so due now) to the first message of
 *     that mailing arriving at the gateway; `--rounds` mailings, each after a random pause so the
 *     create lands at a random phase of the tick. Target ≤ 100 ms.
 * (ii) `--scheduled` messages due at spread instants over the next `--spread-s` seconds (set with
 *     SQL, status scheduled); lateness = arrival at the gateway − due instant. Target p99 ≤ 1.2 s.
 *
 *   bun bench/suites/dispatch/latency.ts --rounds 20 --clients 1000 --scheduled 200 --spread-s 10
 */
import { sql } from "drizzle-orm";
import { systemClock } from "../../../src/clock";
import { Dispatcher } from "../../../src/dispatch/dispatcher";
import type { Signals } from "../../../src/dispatch/signals";
import { startFakeGateway } from "../../../src/gateway/fake-server";
import { HttpGateway } from "../../../src/gateway/http";
import { MailingService } from "../../../src/mailings/service";
import { createLogger } from "../../../src/ops/logger";
import { arg, check, freshPostgres, insertMailing, main, percentile, seedClientsAndMailing } from "../../support";

await main(async () => {
  const rounds = Number(arg("rounds", "3"));
  const clients = Number(arg("clients", "1000"));
  const scheduled = Number(arg("scheduled", "20"));
  const spreadS = Number(arg("spread-s", "2"));
  const tick = arg("tick", "* * * * * *");

  const fresh = await freshPostgres();
  const { database } = fresh;
  const gateway = startFakeGateway();
  let dispatcher: Dispatcher | null = null;
  try {
    await seedClientsAndMailing(database, clients);
    await database.rows(sql`vacuum analyze clients, mailings, messages`);
    const signals: Signals = {
      wake: () => dispatcher?.wake(),
      mailingChanged: (id) => dispatcher?.mailingChanged(id),
      clientChanged: () => dispatcher?.clientChanged(),
    };
    const service = new MailingService(database, systemClock, signals);
    dispatcher = new Dispatcher(
      database,
      new HttpGateway({ baseUrl: gateway.url, token: "bench-token", timeoutMs: 10_000 }),
      systemClock,
      createLogger("warn"),
      { concurrency: 100, claimBatch: 500, leaseSeconds: 60, sendTimeoutMs: 10_000, retryDelaySeconds: 300, tick },
    );
    await dispatcher.start();

    const waitFor = async (what: string, done: () => boolean, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await Bun.sleep(1);
      }
    };

    // (i) create → first message at the gateway
    const firstMs: number[] = [];
    const createMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      await Bun.sleep(Math.random() * 1000);
      gateway.reset();
      const started = Date.now();
      await service.create({ text: `Latency round ${round}`, start_time: "2020-01-01T00:00:00", end_time: "2099-12-31T23:59:59" });
      createMs.push(Date.now() - started);
      await waitFor("the first message", () => gateway.bodies.length > 0, 10_000);
      firstMs.push(gateway.bodies[0]!.at - started);
      await waitFor("the whole mailing", () => gateway.bodies.length >= clients, 60_000);
      await dispatcher.idle();
    }

    // (ii) scheduled messages: lateness after their due instant
    gateway.reset();
    const mailingId = await insertMailing(database, "Scheduled latency");
    const due = await database.rows<{ id: number; due_ms: number }>(sql`
      insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at)
      select ${mailingId}, c.id, c.phone_number, 'scheduled', c.due, '2100-01-01T00:00:00Z', c.due
      from (select id, phone_number,
              clock_timestamp() + interval '1 second'
                + (id - 1) * (${spreadS * 1000}::float8 / ${scheduled}::int) * interval '1 millisecond'
                + random() * (${spreadS * 1000}::float8 / ${scheduled}::int) * interval '1 millisecond' as due
            from clients where id <= ${scheduled}::int) c
      returning id, (extract(epoch from due_at) * 1000)::float8 as due_ms`);
    check(due.length === scheduled, `scheduled ${due.length} of ${scheduled}`);
    const dueById = new Map(due.map((d) => [d.id, Number(d.due_ms)]));
    await waitFor("every scheduled message", () => gateway.bodies.length >= scheduled, (spreadS + 30) * 1000);
    const lateness = gateway.bodies.map((b) => b.at - dueById.get(b.id)!).sort((a, b) => a - b);
    check(gateway.received.size === scheduled, `gateway received ${gateway.received.size} distinct of ${scheduled}`);
    check(lateness[0]! > -50, `a message was sent ${-lateness[0]!} ms before its due instant`);

    const sortedFirst = [...firstMs].sort((a, b) => a - b);
    return {
      tick,
      createToFirst: {
        rounds,
        clients,
        p50Ms: percentile(sortedFirst, 50),
        p95Ms: percentile(sortedFirst, 95),
        maxMs: sortedFirst.at(-1),
        meanCreateCallMs: Math.round(createMs.reduce((a, b) => a + b, 0) / createMs.length),
        /** per round: ms to the first message, of which ms inside MailingService.create() */
        samplesMs: firstMs,
        createCallMs: createMs,
      },
      scheduled: {
        messages: scheduled,
        spreadS,
        p50Ms: Math.round(percentile(lateness, 50)),
        p99Ms: Math.round(percentile(lateness, 99)),
        maxMs: Math.round(lateness.at(-1)!),
        minMs: Math.round(lateness[0]!),
      },
    };
  } finally {
    await dispatcher?.stop(1000);
    await gateway.stop();
    await fresh.drop();
  }
});
