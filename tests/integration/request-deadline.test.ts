/**
 * The whole-request database deadline (DB_REQUEST_TIMEOUT_MS; src/db/deadline.ts) on real
 * PostgreSQL: a request answers 503 with Retry-After once its deadline has passed — a later
 * statement of its transaction blocked, a pool connection not free, the database's host silent —
 * and nothing of it is committed afterwards. The per-statement timeout is set far above the
 * deadline (60 s), so only the deadline can answer in time.
 */
import { afterEach, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { type Database, openPostgres } from "../../src/db/client";
import { outsideDeadline, underDeadline, withRequestDeadline } from "../../src/db/deadline";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { adminKey, auth } from "../support/app";
import { freshDatabase, sessionsWaitingForLocks, type TestDatabase } from "../support/db";
import { type TcpProxy, startTcpProxy } from "../support/tcp-proxy";
import { waitFor } from "../support/wait";

setDefaultTimeout(60_000);

const DEADLINE_MS = 2_000;

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §5 a request's database deadline (needs DATABASE_URL)", () => {
  let test_db: TestDatabase;
  let served: Database | null = null;
  let proxy: TcpProxy | null = null;
  const lockers: postgres.Sql[] = [];

  beforeEach(async () => {
    test_db = await freshDatabase("postgres");
  });
  afterEach(async () => {
    await Promise.all(lockers.splice(0).map((l) => l.end({ timeout: 1 })));
    await served?.close().catch(() => {});
    served = null;
    await proxy?.close();
    proxy = null;
    await test_db.drop();
  });

  /** The app on its own pool of one connection per pool, to `url` (default: the test database). */
  async function app(url = test_db.url!) {
    served = openPostgres(url, { max: 1, statementTimeoutMs: 60_000, connectTimeoutMs: 2_000 });
    const logger = memoryLogger();
    const instance = await createApp({
      config: { adminApiKey: adminKey, dbRequestTimeoutMs: DEADLINE_MS },
      database: served,
      clock: new FixedClock("2026-12-01T00:00:00Z"),
      logger,
      signals: silentSignals,
    });
    // Both pools connected before the clock starts (a first connection takes up to 1 s here under load).
    await served.rows(sql`select 1`);
    await served.writes.execute(sql`select 1`);
    return async (method: string, path: string, body?: unknown, headers: Record<string, string> = auth) => {
      const started = Date.now();
      const response = await instance.handle(
        new Request(`http://x${path}`, {
          method,
          headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
      return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json().catch(() => null)) as any, ms: Date.now() - started };
    };
  }

  /** Holds `lock table <table> in access exclusive mode` on a connection of its own until released. */
  async function lock(table: string) {
    const locker = postgres(test_db.url!, { max: 1, onnotice: () => {} });
    lockers.push(locker);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const taken = new Promise<void>((r) => (locked = r));
    const tx = locker.begin(async (q) => {
      await q.unsafe(`lock table ${table} in access exclusive mode`);
      locked();
      await held;
    });
    await taken;
    return async () => {
      release();
      await tx;
    };
  }

  /** Waits for `answer`, but at most `ms`: the point of the tests is that it comes before the lock goes. */
  const settledWithin = <T>(answer: Promise<T>, ms: number) => Promise.race([answer.then(() => true), Bun.sleep(ms).then(() => false)]);

  const openTransactions = async () => {
    const [row] = await test_db.database.rows<{ n: number }>(
      sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%' and application_name like 'notification-service%'`,
    );
    return row!.n;
  };

  test("a later statement of the transaction blocks: 503 with Retry-After, and the earlier UPDATE is rolled back, not committed when the lock goes", async () => {
    const call = await app();
    const created = await call("POST", "/api/v1/clients", { phone_number: "79110000001", tag: "old" });
    expect(created.status).toBe(201);
    // PATCH runs: select the client, UPDATE it, then (the tag changed) read the open mailings to
    // replan — that read waits for the lock, past the deadline.
    const release = await lock("mailings");
    const patched = call("PATCH", `/api/v1/clients/${created.body.id}`, { tag: "new" });
    await settledWithin(patched, 5_000);
    await release();
    const answer = await patched;
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe("2");
    expect(answer.body.status).toBe(503);
    const [row] = await test_db.database.rows<{ tag: string }>(sql`select tag from clients where id = ${created.body.id}`);
    expect(row!.tag).toBe("old");
    expect(await openTransactions()).toBe(0);
    // And the service serves again.
    expect((await call("PATCH", `/api/v1/clients/${created.body.id}`, { tag: "new" })).status).toBe(200);
  });

  test("no pool connection free before the deadline: 503, and the write does not run once one is free", async () => {
    const call = await app();
    // The write pool's only connection, taken outside any request.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const taken = new Promise<void>((r) => (holding = r));
    const holder = served!.writes.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      holding();
      await held;
    });
    await taken;
    const created = call("POST", "/api/v1/clients", { phone_number: "79110000002", tag: "t" });
    await settledWithin(created, 5_000);
    release();
    await holder;
    const answer = await created;
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe("2");
    // Given the connection some time to run anything left queued.
    await served!.rows(sql`select pg_sleep(0.2)`);
    await served!.writes.execute(sql`select 1`);
    const stored = await test_db.database.rows(sql`select 1 from clients where phone_number = '79110000002'`);
    expect(stored).toEqual([]);
    expect((await call("POST", "/api/v1/clients", { phone_number: "79110000002", tag: "t" })).status).toBe(201);
  });

  test("a write committed outside a transaction decides the request: the audit record after it is not cut at the deadline", async () => {
    const call = await app();
    // The token INSERT commits at once (autocommit); the audit record after it waits for this lock
    // until well past the deadline. A 201 with no audit record of the token would be the defect.
    const release = await lock("audit_log");
    const created = call("POST", "/api/v1/tokens", { name: "past-the-deadline" });
    await waitFor(async () => ((await sessionsWaitingForLocks(test_db.database)) > 0 ? true : undefined), 5_000, "the audit record waiting for the lock");
    await Bun.sleep(DEADLINE_MS + 500);
    await release();
    const answer = await created;
    expect(answer.status).toBe(201);
    const audited = await test_db.database.rows(sql`select 1 from audit_log where kind = 'token.created' and target = ${`token:${answer.body.id}`}`);
    expect(audited.length).toBe(1);
  });

  test("a token's first use (its last_used_at write) does not decide the request: its blocked transaction still answers 503 at the deadline", async () => {
    const call = await app();
    const token = await call("POST", "/api/v1/tokens", { name: "operator" });
    expect(token.status).toBe(201);
    const created = await call("POST", "/api/v1/clients", { phone_number: "79110000004", tag: "old" });
    expect(created.status).toBe(201);
    const release = await lock("mailings");
    // Authenticated by the new token: its first use writes last_used_at, then the PATCH's
    // transaction waits for the lock past the deadline.
    const patched = call("PATCH", `/api/v1/clients/${created.body.id}`, { tag: "new" }, { authorization: `Bearer ${token.body.token}` });
    await settledWithin(patched, 5_000);
    await release();
    const answer = await patched;
    expect(answer.status).toBe(503);
    const [row] = await test_db.database.rows<{ tag: string; used: boolean }>(
      sql`select c.tag, (select last_used_at is not null from api_tokens where id = ${token.body.id}) as used from clients c where c.id = ${created.body.id}`,
    );
    expect(row).toEqual({ tag: "old", used: true });
  });

  test("a LISTEN connection first opened by a request does not put later notifications under that request's deadline", async () => {
    served = openPostgres(test_db.url!, { max: 1 });
    const seen: boolean[] = [];
    const got = Promise.withResolvers<void>();
    // A request opens the process's LISTEN connection (the open-mailings cache does on the first
    // client write); a notification that arrives while it still runs (a dispatcher's wake) is not its work.
    await withRequestDeadline(30_000, async () => {
      await served!.listen("deadline_probe", () => {
        seen.push(underDeadline());
        got.resolve();
      });
      await outsideDeadline(() => served!.notify("deadline_probe", ""));
      await got.promise;
    });
    expect(seen).toEqual([false]);
  });

  test("the database's host stops answering mid-transaction: 503 without its answer, and the server rolls the transaction back on its own", async () => {
    const url = new URL(test_db.url!);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.hostname = "127.0.0.1";
    url.port = String(proxy.port);
    const call = await app(url.toString());
    const created = await call("POST", "/api/v1/clients", { phone_number: "79110000003", tag: "old" });
    expect(created.status).toBe(201);
    // The transaction gets as far as its UPDATE, then its replanning read waits for the lock; the
    // network goes silent while it waits, so neither the cancel nor the rollback reach the server.
    const release = await lock("mailings");
    const patched = call("PATCH", `/api/v1/clients/${created.body.id}`, { tag: "new" });
    await waitFor(async () => ((await sessionsWaitingForLocks(test_db.database)) > 0 ? true : undefined), 5_000, "the PATCH waiting for the lock");
    proxy.blackhole();
    const answered = await settledWithin(patched, 10_000);
    await release();
    expect(answered).toBe(true);
    const answer = await patched;
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe("2");
    // The server ends the transaction itself (SET LOCAL idle_in_transaction_session_timeout to what
    // was left of the deadline; the service's own default would be 60 s): never committed.
    await waitFor(async () => ((await openTransactions()) === 0 ? true : undefined), 20_000, "the server to end the abandoned transaction");
    const [row] = await test_db.database.rows<{ tag: string }>(sql`select tag from clients where id = ${created.body.id}`);
    expect(row!.tag).toBe("old");
  });
});
