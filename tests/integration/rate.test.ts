/**
 * Issue 15 item 4: PROVIDER_RATE / PROVIDER_BURST cap the sends of all processes together (one token
 * bucket row in PostgreSQL), and a 429 with Retry-After pauses every process for that long.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { Dispatcher } from "../../src/dispatch/dispatcher";
import { startFakeGateway } from "../../src/gateway/fake-server";
import { HttpGateway } from "../../src/gateway/http";
import { type TestApp, testApp } from "../support/app";
import { backends, freshDatabase } from "../support/db";
import { createOpenMailing, insertClients, startWorker, statusCounts, waitFor, workerFixture } from "../support/processes";

setDefaultTimeout(60_000);

const day = "2026-12-01";

for (const backend of backends()) {
  describe(`[${backend}] a 429 with Retry-After pauses every process`, () => {
    let t: TestApp;
    let server: ReturnType<typeof Bun.serve> | undefined;
    afterEach(async () => {
      await server?.stop(true);
      await t?.close();
    });

    test("the first send is answered 429 Retry-After: 60; nobody sends for 60 s, then all are sent", async () => {
      let requests = 0;
      server = Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch() {
          requests++;
          return requests === 1 ? new Response("slow down", { status: 429, headers: { "retry-after": "60" } }) : Response.json({ code: 0 });
        },
      });
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      for (let i = 0; i < 3; i++) await t.request("POST", "/api/v1/clients", { phone_number: `7910123456${i}` });
      expect((await t.request("POST", "/api/v1/mailings", { text: "hi", start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` })).status).toBe(201);
      const dispatcher = () =>
        new Dispatcher(t.database, new HttpGateway({ baseUrl: `http://127.0.0.1:${server!.port}`, token: "x", timeoutMs: 2000 }), t.clock, t.logger, {
          concurrency: 1, claimBatch: 10, leaseSeconds: 60, retryDelaySeconds: 300, tick: null,
        });
      const first = dispatcher();
      await first.drain();
      await first.stop(1000);
      expect(requests).toBe(1);
      const rows = () => t.database.rows<{ status: string; next_attempt_at: string }>(
        sql`select status, to_char(next_attempt_at at time zone 'UTC', 'HH24:MI:SS') as next_attempt_at from messages order by id`,
      );
      // The 429'd message retries after Retry-After (not RETRY_DELAY_SECONDS); the others were handed back unsent.
      const held = await rows();
      expect(held.map((r) => r.status).sort()).toEqual(["retrying", "scheduled", "scheduled"]);
      expect(held.map((r) => r.next_attempt_at)).toEqual(["10:01:00", "10:01:00", "10:01:00"]);
      // Another process hears of the pause through the database: it sends nothing either.
      const second = dispatcher();
      t.clock.advance(30);
      await t.database.rows(sql`update messages set next_attempt_at = ${`${day}T10:00:00Z`}::timestamptz`);
      await second.drain();
      expect(requests).toBe(1);
      t.clock.advance(31);
      await second.drain();
      await second.stop(1000);
      expect(requests).toBe(4);
      expect((await rows()).map((r) => r.status)).toEqual(["sent", "sent", "sent"]);
      expect(t.logger.lines.some((l) => l.msg === "gateway asked to slow down; sending paused")).toBe(true);
    });
  });
}

const RATE = 200;
const MESSAGES = 2400;

describe.skipIf(!process.env.DATABASE_URL)("[postgres] PROVIDER_RATE across 3 worker processes (needs DATABASE_URL)", () => {
  const fixture = workerFixture();
  const { workers } = fixture;

  test(`${MESSAGES} messages at PROVIDER_RATE=${RATE}: every second within 10 % of the cap, throughput ≥ 90 % of it`, async () => {
    const tdb = (fixture.tdb = await freshDatabase("postgres"));
    const gateway = (fixture.gateway = startFakeGateway({ latencyMs: 2 }));
    const started = await Promise.all(
      [1, 2, 3].map((i) =>
        startWorker({
          name: `rated-${i}`,
          databaseUrl: tdb!.url!,
          providerUrl: gateway!.url,
          env: { PROVIDER_RATE: String(RATE), PROVIDER_BURST: "10", SEND_CONCURRENCY: "50", CLAIM_BATCH: "100", LOG_LEVEL: "warn" },
        }),
      ),
    );
    workers.push(...started);
    await insertClients(tdb.database, MESSAGES);
    const mailingId = await createOpenMailing(workers[0]!);
    await waitFor(
      async () => ((await statusCounts(tdb!.database, mailingId)).sent ?? 0) === MESSAGES || undefined,
      120_000,
      "every message to be sent",
      250,
    );
    const times = gateway.bodies.map((b) => b.at).sort((a, b) => a - b);
    expect(times).toHaveLength(MESSAGES);
    const first = times[0]!;
    const perSecond = new Map<number, number>();
    for (const at of times) perSecond.set(Math.floor((at - first) / 1000), (perSecond.get(Math.floor((at - first) / 1000)) ?? 0) + 1);
    const seconds = [...perSecond.keys()].sort((a, b) => a - b);
    const full = seconds.slice(0, -1).map((s) => perSecond.get(s) ?? 0);
    // For the record: the busiest one-second window anywhere (a token bucket allows RATE + BURST).
    let peak = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      peak = Math.max(peak, i - j + 1);
    }
    const throughput = (MESSAGES - 1) / ((times.at(-1)! - first) / 1000);
    console.log(`rate: ${MESSAGES} sends in ${((times.at(-1)! - first) / 1000).toFixed(1)} s, ${throughput.toFixed(1)}/s, busiest 1-s window ${peak}, per second ${full.join(" ")}`);
    // Every whole second the gateway counted (the last one may be partial) within 10 % of the cap.
    expect(full.length).toBeGreaterThanOrEqual(Math.floor(MESSAGES / RATE) - 1);
    for (const n of full) expect(n).toBeLessThanOrEqual(RATE * 1.1);
    expect(throughput).toBeGreaterThanOrEqual(RATE * 0.9);
    expect(throughput).toBeLessThanOrEqual(RATE * 1.1);
  }, 120_000);
});
