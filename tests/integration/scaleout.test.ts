/**
 * Scale-out, proven (issue 3, item 7; SPEC §2, §6): three real worker processes share one PostgreSQL
 * database and one fake gateway; 20,000 messages are planned by one mailing and every one of them
 * reaches the gateway exactly once and ends `sent`, with every worker taking part.
 *
 * Runs only when DATABASE_URL points at a PostgreSQL server (PGlite cannot be shared by processes).
 */
import { describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { startFakeGateway } from "../../src/gateway/fake-server";
import { freshDatabase } from "../support/db";
import { createOpenMailing, insertClients, startWorker, statusCounts, waitFor, workerFixture } from "../support/processes";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

const CLIENTS = 20_000;
const WORKERS = 3;

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §6 scale-out: 3 worker processes on one database (needs DATABASE_URL)", () => {
  const fixture = workerFixture();
  const { workers } = fixture;

  test(
    "20,000 messages: each reaches the gateway exactly once, all end sent, all 3 workers send a share",
    async () => {
      const tdb = (fixture.tdb = await freshDatabase("postgres"));
      const database = tdb.database;
      const gateway = (fixture.gateway = startFakeGateway({ latencyMs: 2 }));

      const started = await Promise.all(
        Array.from({ length: WORKERS }, (_, i) =>
          startWorker({
            name: `worker-${i + 1}`,
            databaseUrl: tdb!.url!,
            providerUrl: gateway!.url,
            env: { TICK: "* * * * * *", SEND_CONCURRENCY: "50", CLAIM_BATCH: "500", LEASE_SECONDS: "60", LOG_LEVEL: "info" },
            // keep only the send lines (for the per-worker share) and anything that is not info
            keepLine: (l) => l.msg === "send" || l.level !== "info",
          }),
        ),
      );
      workers.push(...started);

      const t0 = performance.now();
      await insertClients(database, CLIENTS);
      const tInserted = performance.now();
      const mailingId = await createOpenMailing(workers[0]!);
      const tPlanned = performance.now();

      const final = await waitFor(
        async () => {
          const counts = await statusCounts(database, mailingId);
          return (counts.sent ?? 0) === CLIENTS ? counts : undefined;
        },
        120_000,
        "every message to be sent",
        200,
      );
      const tDone = performance.now();

      // Every message planned and sent, nothing else.
      expect(final).toEqual({ sent: CLIENTS });
      const [row] = await database.rows<{ n: number; attempts: number }>(
        sql`select count(*)::int as n, max(attempts)::int as attempts from messages`,
      );
      expect(row!.n).toBe(CLIENTS);
      expect(row!.attempts).toBe(1);

      // The gateway saw every message id exactly once.
      expect(gateway.received.size).toBe(CLIENTS);
      const duplicates = [...gateway.received].filter(([, n]) => n > 1);
      expect(duplicates).toEqual([]);

      // Every worker took part, and the shares add up to the whole with no id sent by two workers.
      const shares = workers.map((w) => w.lines.filter((l) => l.msg === "send" && l.outcome === "sent").length);
      const ids = new Set<number>();
      for (const w of workers) for (const l of w.lines) if (l.msg === "send") ids.add(l.message_id as number);
      for (const share of shares) expect(share).toBeGreaterThan(0);
      expect(shares.reduce((a, b) => a + b, 0)).toBe(CLIENTS);
      expect(ids.size).toBe(CLIENTS);

      // No worker logged a warning or an error.
      for (const w of workers) expect(w.lines.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);

      console.log(
        `scale-out: ${CLIENTS} clients inserted in ${Math.round(tInserted - t0)} ms, mailing planned in ${Math.round(tPlanned - tInserted)} ms, ` +
          `all sent ${((tDone - tPlanned) / 1000).toFixed(1)} s after creation ` +
          `(${Math.round(CLIENTS / ((tDone - tPlanned) / 1000))} msg/s); shares ${shares.join(" / ")}`,
      );
    },
    180_000,
  );
});
