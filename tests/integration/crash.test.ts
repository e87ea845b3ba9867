/**
 * Crash and shutdown, proven (issue 3, item 8; SPEC §6) with real worker processes on one PostgreSQL:
 *
 * - SIGKILL a worker mid-dispatch: after its leases expire the survivors send the rest; nothing is
 *   lost, and the only repeats at the gateway are sends that were in flight at the kill (at most the
 *   killed worker's SEND_CONCURRENCY).
 * - SIGTERM a worker mid-dispatch: it finishes its in-flight sends, hands back what it claimed but had
 *   not started, and exits 0 within LEASE_SECONDS; a worker started afterwards sends the rest with no
 *   repeat at all.
 *
 * Runs only when DATABASE_URL points at a PostgreSQL server (PGlite cannot be shared by processes).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { type FakeGateway, startFakeGateway } from "../../src/gateway/fake-server";
import { type TestDatabase, freshDatabase } from "../support/db";
import {
  createOpenMailing,
  insertClients,
  killAll,
  startWorker,
  statusCounts,
  waitFor,
  type Worker,
} from "../support/processes";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §6 crash and shutdown of worker processes (needs DATABASE_URL)", () => {
  const databases: TestDatabase[] = [];
  const gateways: FakeGateway[] = [];
  const workers: Worker[] = [];

  afterAll(async () => {
    await killAll(workers);
    for (const g of gateways) await g.stop().catch(() => {});
    for (const d of databases) await d.drop();
  }, 30_000);

  async function setup(clients: number, latencyMs: number) {
    const tdb = await freshDatabase("postgres");
    databases.push(tdb);
    const gateway = startFakeGateway({ latencyMs });
    gateways.push(gateway);
    await insertClients(tdb.database, clients);
    return { database: tdb.database, url: tdb.url!, gateway };
  }

  test(
    "SIGKILL mid-dispatch: survivors send the rest after the lease; no message lost, repeats ≤ SEND_CONCURRENCY",
    async () => {
      const MESSAGES = 5_000;
      const SEND_CONCURRENCY = 20;
      const CLAIM_BATCH = 100;
      const LEASE_SECONDS = 3;
      const { database, url, gateway } = await setup(MESSAGES, 20);
      const env = {
        SEND_CONCURRENCY: String(SEND_CONCURRENCY),
        CLAIM_BATCH: String(CLAIM_BATCH),
        LEASE_SECONDS: String(LEASE_SECONDS),
        PROVIDER_TIMEOUT_MS: "1000",
        TICK: "* * * * * *",
        LOG_LEVEL: "info",
      };
      const started = await Promise.all(
        ["victim", "survivor-1", "survivor-2"].map((name) =>
          startWorker({ name, databaseUrl: url, providerUrl: gateway.url, env, keepLine: (l) => l.msg === "send" || l.level !== "info" }),
        ),
      );
      workers.push(...started);
      const [victim, ...survivors] = started as [Worker, Worker, Worker];

      const mailingId = await createOpenMailing(survivors[0]);
      // Mid-dispatch: the victim has sent a good number and sends are still going on.
      let victimSends = 0;
      await victim.waitForLog((l) => l.msg === "send" && ++victimSends >= 150, 60_000);
      const killedAt = Date.now();
      const exit = await victim.kill("SIGKILL");
      expect(exit.signal).toBe("SIGKILL");
      const atKill = await statusCounts(database, mailingId);
      expect(atKill.sent ?? 0).toBeLessThan(MESSAGES);
      expect(atKill.sending ?? 0).toBeGreaterThan(0);

      const t0 = performance.now();
      const final = await waitFor(
        async () => {
          const counts = await statusCounts(database, mailingId);
          return (counts.sent ?? 0) === MESSAGES ? counts : undefined;
        },
        60_000,
        "the survivors to send every message",
        100,
      );
      const recoveryMs = performance.now() - t0;

      // Nothing lost: every message sent, every id reached the gateway.
      expect(final).toEqual({ sent: MESSAGES });
      expect(gateway.received.size).toBe(MESSAGES);

      // The only repeats are sends in flight at the kill: at most the victim's SEND_CONCURRENCY,
      // each first received around the kill (the gateway may read a request the victim wrote just
      // before dying a moment after the exit is seen) and again only after it.
      const repeated = [...gateway.received].filter(([, n]) => n > 1);
      expect(repeated.length).toBeLessThanOrEqual(SEND_CONCURRENCY);
      for (const [, n] of repeated) expect(n).toBe(2);
      const seen = new Map<number, number[]>();
      for (const b of gateway.bodies) seen.set(b.id, [...(seen.get(b.id) ?? []), b.at]);
      for (const [id] of repeated) {
        const [first, second] = seen.get(id)!;
        expect(first!).toBeLessThanOrEqual(victim.exitedAt! + 500);
        expect(second!).toBeGreaterThan(killedAt);
      }

      // The survivors took over the victim's claims (a second claim shows as attempts = 2); only the
      // victim's holdings (in flight + prefetched) can have been claimed twice.
      const [taken] = await database.rows<{ n: number; max: number }>(
        sql`select count(*) filter (where attempts > 1)::int as n, max(attempts)::int as max from messages where mailing_id = ${mailingId}`,
      );
      expect(taken!.n).toBeGreaterThan(0);
      expect(taken!.n).toBeLessThanOrEqual(SEND_CONCURRENCY + CLAIM_BATCH);
      expect(taken!.max).toBe(2);
      const retaken = survivors.flatMap((w) => w.lines.filter((l) => l.msg === "send" && (l.attempt as number) > 1));
      expect(retaken.length).toBe(taken!.n);

      // Every message was logged as sent by some worker, except for the last lines the victim had
      // not yet written out when it was killed: logging is asynchronous (pino), and SIGKILL leaves
      // no time to flush. The survivors, which exit normally, lose nothing; the messages themselves
      // are all `sent` and at the gateway (above).
      const victimSent = victim.lines.filter((l) => l.msg === "send" && l.outcome === "sent").length;
      const survivorSent = survivors.map((w) => w.lines.filter((l) => l.msg === "send" && l.outcome === "sent").length);
      expect(victimSent + survivorSent.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(MESSAGES - SEND_CONCURRENCY);
      for (const w of survivors) expect(w.lines.filter((l) => l.level === "error")).toEqual([]);

      console.log(
        `crash: victim sent ${victimSent} before SIGKILL (${atKill.sent ?? 0} sent, ${atKill.sending ?? 0} sending in the database at the kill); ` +
          `survivors ${survivorSent.join(" / ")}; ${taken!.n} re-claimed after the lease; ${repeated.length} repeats at the gateway; ` +
          `all sent ${(recoveryMs / 1000).toFixed(1)} s after the kill`,
      );
    },
    120_000,
  );

  test(
    "SIGTERM mid-dispatch: in-flight sends finish, claimed-but-unstarted ones are handed back, exit 0 within LEASE_SECONDS; a new worker sends the rest with no repeat",
    async () => {
      const MESSAGES = 300;
      const LEASE_SECONDS = 5;
      const { database, url, gateway } = await setup(MESSAGES, 300);
      const env = { SEND_CONCURRENCY: "20", CLAIM_BATCH: "50", LEASE_SECONDS: String(LEASE_SECONDS), PROVIDER_TIMEOUT_MS: "2000", TICK: "* * * * * *", LOG_LEVEL: "info" };

      const first = await startWorker({ name: "draining", databaseUrl: url, providerUrl: gateway.url, env });
      workers.push(first);
      const mailingId = await createOpenMailing(first);
      // After the first wave of results the next wave is in flight (300 ms each) and more is queued:
      // wait for requests beyond the first wave (SEND_CONCURRENCY of them) to reach the gateway.
      await first.waitForLog((l) => l.msg === "send", 30_000);
      const inFlight = () => gateway.received.size - first.lines.filter((l) => l.msg === "send").length;
      const inFlightAtSignal = await waitFor(
        () => (gateway.received.size > Number(env.SEND_CONCURRENCY) && inFlight() > 0 ? inFlight() : undefined),
        10_000,
        "the second wave of sends to reach the gateway",
        10,
      );
      expect(inFlightAtSignal).toBeGreaterThan(0);
      const exit = await first.kill("SIGTERM", LEASE_SECONDS * 1000 + 5_000);
      expect(exit.code).toBe(0);
      expect(exit.elapsedMs).toBeLessThan(LEASE_SECONDS * 1000);
      expect(first.lines.some((l) => l.msg === "stopped")).toBe(true);
      expect(first.lines.filter((l) => l.level === "error")).toEqual([]);

      // No message is left claimed: in-flight sends were written back, the rest handed back.
      const after = await statusCounts(database, mailingId);
      expect(Object.keys(after).filter((s) => !["sent", "scheduled", "retrying"].includes(s))).toEqual([]);
      expect(after.sending ?? 0).toBe(0);
      // Every request that reached the gateway finished and was recorded as sent (none aborted).
      expect(after.sent ?? 0).toBe(gateway.received.size);
      expect(after.retrying ?? 0).toBe(0);
      expect(after.sent ?? 0).toBeLessThan(MESSAGES);
      // Handed-back messages carry no attempt: nothing was sent under that claim.
      const [handedBack] = await database.rows<{ n: number; attempted: number; later: number }>(
        sql`select count(*)::int as n, count(*) filter (where attempts <> 0)::int as attempted,
              count(*) filter (where next_attempt_at > now())::int as later
            from messages where mailing_id = ${mailingId} and status = 'scheduled'`,
      );
      expect(handedBack!.n).toBe(MESSAGES - (after.sent ?? 0));
      expect(handedBack!.attempted).toBe(0);
      expect(handedBack!.later).toBe(0);

      // A second worker sends the rest; SIGTERM drained cleanly, so no id reaches the gateway twice.
      gateway.options.latencyMs = 5;
      const second = await startWorker({ name: "successor", databaseUrl: url, providerUrl: gateway.url, env });
      workers.push(second);
      const final = await waitFor(
        async () => {
          const counts = await statusCounts(database, mailingId);
          return (counts.sent ?? 0) === MESSAGES ? counts : undefined;
        },
        30_000,
        "the second worker to send the rest",
        100,
      );
      expect(final).toEqual({ sent: MESSAGES });
      expect(gateway.received.size).toBe(MESSAGES);
      expect([...gateway.received].filter(([, n]) => n > 1)).toEqual([]);
      const secondSent = second.lines.filter((l) => l.msg === "send" && l.outcome === "sent").length;
      expect(secondSent).toBe(MESSAGES - (after.sent ?? 0));
      await second.kill("SIGTERM");

      console.log(
        `sigterm: ${inFlightAtSignal} sends in flight at the signal; exit ${exit.code} after ${Math.round(exit.elapsedMs)} ms; ${after.sent ?? 0} sent before exit, ` +
          `${after.scheduled ?? 0} handed back; successor sent ${secondSent}`,
      );
    },
    60_000,
  );

  test(
    "SIGTERM while claiming at full speed: every worker exits 0 within LEASE_SECONDS and leaves nothing claimed",
    async () => {
      // A fast gateway keeps the tick claiming all the time, so the signal lands while a claim is
      // running: what that claim returns must be handed back too, not left in a local queue.
      const MESSAGES = 5_000;
      const LEASE_SECONDS = 5;
      const ROUNDS = 3;
      const { database, url, gateway } = await setup(MESSAGES, 1);
      const env = { SEND_CONCURRENCY: "20", CLAIM_BATCH: "50", LEASE_SECONDS: String(LEASE_SECONDS), PROVIDER_TIMEOUT_MS: "2000", TICK: "* * * * * *", LOG_LEVEL: "info" };
      let mailingId = 0;
      const exits: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const worker = await startWorker({ name: `round-${round + 1}`, databaseUrl: url, providerUrl: gateway.url, env, keepLine: (l) => l.msg !== "send" });
        workers.push(worker);
        if (round === 0) mailingId = await createOpenMailing(worker);
        await waitFor(async () => ((worker.counts.get("send") ?? 0) >= 100 ? true : undefined), 30_000, `${worker.name} to send 100 messages`, 10);
        const exit = await worker.kill("SIGTERM", LEASE_SECONDS * 1000 + 3_000);
        exits.push(Math.round(exit.elapsedMs));
        const after = await statusCounts(database, mailingId);
        expect({ round: round + 1, code: exit.code, signal: exit.signal, withinLease: exit.elapsedMs < LEASE_SECONDS * 1000, sending: after.sending ?? 0 }).toEqual({
          round: round + 1,
          code: 0,
          signal: null,
          withinLease: true,
          sending: 0,
        });
      }

      const last = await startWorker({ name: "last", databaseUrl: url, providerUrl: gateway.url, env, keepLine: (l) => l.msg !== "send" });
      workers.push(last);
      const final = await waitFor(
        async () => {
          const counts = await statusCounts(database, mailingId);
          return (counts.sent ?? 0) === MESSAGES ? counts : undefined;
        },
        60_000,
        "the last worker to send the rest",
        100,
      );
      expect(final).toEqual({ sent: MESSAGES });
      expect(gateway.received.size).toBe(MESSAGES);
      expect([...gateway.received].filter(([, n]) => n > 1)).toEqual([]);
      await last.kill("SIGTERM");
      console.log(`sigterm at full speed: exits after ${exits.join(" / ")} ms`);
    },
    90_000,
  );
});
