/**
 * Worker crashes, repeated (issue 14 item 1; SPEC §6): three worker processes on one PostgreSQL
 * database; every few seconds a random one is SIGKILLed mid-dispatch and a new one started in its
 * place. Every message ends `sent`, every id reaches the gateway, and the repeats at the gateway
 * (sends in flight at a kill, sent again after its lease) are at most SEND_CONCURRENCY per kill.
 *
 * `bun test`: 5,000 messages, 3 kills. `bun run chaos` (CHAOS=1): 100,000 messages, 10 kills.
 * Needs DATABASE_URL (PGlite cannot be shared by processes). crash.test.ts holds the single-kill
 * version with the finer checks (timing of each repeat, re-claims, logs).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type FakeGateway, startFakeGateway } from "../../src/gateway/fake-server";
import { type TestDatabase, freshDatabase } from "../support/db";
import { createOpenMailing, insertClients, killAll, startWorker, statusCounts, waitFor, type Worker } from "../support/processes";

setDefaultTimeout(1_800_000);

const chaos = process.env.CHAOS === "1";
const MESSAGES = chaos ? 100_000 : 5_000;
const KILLS = chaos ? 10 : 3;
const SEND_CONCURRENCY = 20;

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §6 a random worker SIGKILLed and restarted, again and again (needs DATABASE_URL)", () => {
  let tdb: TestDatabase;
  let gateway: FakeGateway;
  const all: Worker[] = [];

  afterAll(async () => {
    await killAll(all);
    await gateway?.stop().catch(() => {});
    await tdb?.drop();
  }, 60_000);

  test(`${MESSAGES} messages, 3 workers, ${KILLS} kills: all sent, repeats ≤ SEND_CONCURRENCY per kill`, async () => {
    tdb = await freshDatabase("postgres");
    gateway = startFakeGateway({ latencyMs: chaos ? 40 : 100 });
    await insertClients(tdb.database, MESSAGES);
    const env = { SEND_CONCURRENCY: String(SEND_CONCURRENCY), CLAIM_BATCH: "100", LEASE_SECONDS: "3", PROVIDER_TIMEOUT_MS: "1000", LOG_LEVEL: "warn" };
    const start = async (name: string) => {
      const w = await startWorker({ name, databaseUrl: tdb.url!, providerUrl: gateway.url, env });
      all.push(w);
      return w;
    };
    const live = await Promise.all(["w0", "w1", "w2"].map(start));
    const mailingId = await createOpenMailing(live[0]!);

    const kills: { victim: string; at: number; sentBefore: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      // A few seconds of dispatch (and at least some progress) between kills.
      const target = gateway.received.size + Math.floor(MESSAGES / (KILLS + 3) / 4);
      const pause = chaos ? 2000 + Math.random() * 3000 : 700 + Math.random() * 500;
      const since = Date.now();
      await waitFor(() => (Date.now() - since >= pause && gateway.received.size >= Math.min(target, MESSAGES - 1) ? true : gateway.received.size >= MESSAGES ? true : undefined), 120_000, `progress before kill ${k + 1}`, 20);
      if (gateway.received.size >= MESSAGES) break;
      const index = Math.floor(Math.random() * live.length);
      const victim = live[index]!;
      const exit = await victim.kill("SIGKILL");
      expect(exit.signal).toBe("SIGKILL");
      kills.push({ victim: victim.name, at: Date.now(), sentBefore: gateway.received.size });
      live[index] = await start(`${victim.name.split("#")[0]}#${k + 1}`);
    }

    const final = await waitFor(
      async () => {
        const counts = await statusCounts(tdb.database, mailingId);
        return counts.sent === MESSAGES ? counts : undefined;
      },
      600_000,
      "every message to be sent",
      250,
    );
    expect(final).toEqual({ sent: MESSAGES });
    expect(gateway.received.size).toBe(MESSAGES);
    const repeats = [...gateway.received.values()].reduce((sum, n) => sum + (n - 1), 0);
    expect(kills.length).toBe(KILLS);
    expect(repeats).toBeLessThanOrEqual(SEND_CONCURRENCY * kills.length);
    for (const w of live) expect(w.running).toBe(true);
    console.log(
      `crash chaos: ${MESSAGES} messages, ${kills.length} kills (${kills.map((k) => `${k.victim} at ${k.sentBefore}`).join(", ")}); ` +
        `${repeats} repeats at the gateway (bound ${SEND_CONCURRENCY * kills.length}); ${all.length} processes started`,
    );
  });
});
