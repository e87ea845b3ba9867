import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { createApp } from "../../src/app";
import { systemClock } from "../../src/clock";
import { type Database, openPostgres } from "../../src/db/client";
import { Dispatcher } from "../../src/dispatch/dispatcher";
import { databaseSignals, silentSignals } from "../../src/dispatch/signals";
import { type FakeGateway, startFakeGateway } from "../../src/gateway/fake-server";
import { HttpGateway } from "../../src/gateway/http";
import { memoryLogger } from "../../src/ops/logger";
import { adminKey, auth } from "../support/app";
import { freshDatabase, sessionsWaitingForLocks, type TestDatabase } from "../support/db";
import { waitFor } from "../support/wait";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

/**
 * §4 "across processes, with PostgreSQL LISTEN/NOTIFY": an API that runs no dispatcher, and a
 * dispatcher with no timer on another connection (as in another process). Only NOTIFY can wake it.
 */
describe.skipIf(!process.env.DATABASE_URL)("[postgres] §4 cross-process wake-up through LISTEN/NOTIFY (needs DATABASE_URL)", () => {
  let db: TestDatabase;
  let workerDb: Database;
  let dispatcher: Dispatcher;
  let gateway: FakeGateway;
  let app: Awaited<ReturnType<typeof createApp>>;
  const call = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = { method, headers: { ...auth, "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await app.handle(new Request(`http://localhost${path}`, init));
    return { status: response.status, body: await response.json().catch(() => null) };
  };

  beforeAll(async () => {
    // Started here, not in the describe body: that body runs even when the block is skipped.
    gateway = startFakeGateway({ latencyMs: 200 });
    db = await freshDatabase("postgres");
    const logger = memoryLogger();
    app = await createApp({
      config: { adminApiKey: adminKey },
      database: db.database,
      clock: systemClock,
      logger,
      signals: databaseSignals(db.database, logger, () => null), // this "process" has no dispatcher
    });
    workerDb = openPostgres(db.url!);
    dispatcher = new Dispatcher(workerDb, new HttpGateway({ baseUrl: gateway.url, token: "", timeoutMs: 5000 }), systemClock, memoryLogger(), {
      concurrency: 1,
      claimBatch: 10,
      leaseSeconds: 60,
      retryDelaySeconds: 300,
      tick: null, // no timer: only a notification can make it claim
    });
    await dispatcher.start();
    await dispatcher.idle();
  });
  afterAll(async () => {
    await dispatcher.stop(1000);
    await workerDb.close();
    await gateway.stop();
    await db.drop();
  });

  test("a due mailing created in one process is sent by a dispatcher in another at once", async () => {
    for (const phone of ["79100000001", "79100000002", "79100000003"]) {
      expect((await call("POST", "/api/v1/clients", { phone_number: phone })).status).toBe(201);
    }
    const now = new Date();
    const wall = (d: Date) => d.toISOString().slice(0, 19);
    const created = await call("POST", "/api/v1/mailings", {
      text: "now",
      start_time: wall(new Date(now.getTime() - 86_400_000)),
      end_time: wall(new Date(now.getTime() + 86_400_000)),
    });
    expect(created.status).toBe(201);
    await waitFor(() => (gateway.received.size > 0 ? true : undefined), 3000, "the first send to reach the gateway", 10);
    expect(gateway.received.size).toBe(1);

    // Cancelling it from the API process reaches the worker too: the sends still queued there
    // (one at a time, 200 ms each) are not made.
    expect((await call("POST", `/api/v1/mailings/${created.body.id}/cancel`)).status).toBe(200);
    // All three were claimed in one batch: idle() resolves once each of them is decided and written.
    await dispatcher.idle();
    expect(gateway.received.size).toBeLessThanOrEqual(2);
    const rows = await db.database.rows<{ status: string; n: number }>(sql`
      select status, count(*)::int as n from messages group by 1 order by 1`);
    // SPEC §4: a send already handed to the gateway records `sent`; only the others are cancelled.
    const sent = gateway.received.size;
    expect(rows).toEqual([
      { status: "cancelled", n: 3 - sent },
      ...(sent > 0 ? [{ status: "sent", n: sent }] : []),
    ]);
  });
});

/**
 * Issue 4: each process caches the open mailings for `POST /api/v1/clients`. A mailing created or
 * cancelled in another process reaches that cache through NOTIFY; and whatever the cache holds, a
 * cancelled mailing never gets a message.
 */
describe.skipIf(!process.env.DATABASE_URL)("[postgres] open mailings cached per process (needs DATABASE_URL)", () => {
  let db: TestDatabase;
  const apps: Awaited<ReturnType<typeof createApp>>[] = [];
  const others: Database[] = [];
  /** per "process": how many notifications its listeners (the open-mailings cache) have handled */
  const heard: { count: number }[] = [];
  const call = async (app: number, method: string, path: string, body?: unknown) => {
    const init: RequestInit = { method, headers: { ...auth, "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await apps[app]!.handle(new Request(`http://localhost${path}`, init));
    return { status: response.status, body: await response.json().catch(() => null) };
  };
  const messagesOf = (clientId: number) =>
    db.database.rows<{ mailing_id: number; status: string }>(
      sql`select mailing_id, status from messages where client_id = ${clientId} order by mailing_id`,
    );

  beforeAll(async () => {
    db = await freshDatabase("postgres");
    for (let i = 0; i < 2; i++) {
      // Two "processes": their own connections, their own services and caches.
      const own = i === 0 ? db.database : openPostgres(db.url!);
      if (i > 0) others.push(own);
      const { database, counter } = counting(own);
      heard.push(counter);
      const logger = memoryLogger();
      // A cache that never expires by itself: only the signals and the insert's guard keep it right.
      apps.push(
        await createApp({
          config: { adminApiKey: adminKey },
          database,
          clock: systemClock,
          logger,
          signals: databaseSignals(database, logger, () => null),
          openMailingsTtlMs: 3_600_000,
        }),
      );
    }
  });
  afterAll(async () => {
    // Closed before the drop: a listening connection left open would try to reconnect for ever.
    for (const database of others) await database.close();
    await db.drop();
  });

  test("a mailing created in one process plans the clients created next in another", async () => {
    // Process 1 reads (and caches) the open mailings: none yet.
    const first = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000001", tag: "a" });
    expect(first.status).toBe(201);
    expect(await messagesOf(first.body.id)).toEqual([]);

    const now = Date.now();
    const wall = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const heardBefore = heard[1]!.count;
    const mailing = await call(0, "POST", "/api/v1/mailings", {
      text: "later",
      start_time: wall(now + 86_400_000),
      end_time: wall(now + 2 * 86_400_000),
    });
    expect(mailing.status).toBe(201);
    await waitFor(() => (heard[1]!.count > heardBefore ? true : undefined), 5000, "process 1 to hear of the new mailing", 10);
    const second = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000002", tag: "a" });
    expect(second.status).toBe(201);
    expect(await messagesOf(second.body.id)).toEqual([{ mailing_id: mailing.body.id, status: "scheduled" }]);

    // Cancelled in process 0, then a client at once in process 1 (its cache may not know yet):
    // the planning statement itself skips a cancelled mailing.
    expect((await call(0, "POST", `/api/v1/mailings/${mailing.body.id}/cancel`)).status).toBe(200);
    const third = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000003", tag: "a" });
    expect(third.status).toBe(201);
    expect(await messagesOf(third.body.id)).toEqual([]);

    // A duplicate phone is still a 409 naming the field, and changes nothing.
    const duplicate = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000003", tag: "b" });
    expect(duplicate.status).toBe(409);
    expect(JSON.stringify(duplicate.body)).toContain("phone_number");
  });

  test("a cache that has not heard of a new mailing yet still plans the client", async () => {
    // A third "process" whose mailing writes send no notification: process 1's cache, loaded
    // just before, cannot know of the mailing. The insert's guard finds it in the database.
    const quiet = await createApp({
      config: { adminApiKey: adminKey },
      database: db.database,
      clock: systemClock,
      logger: memoryLogger(),
      signals: silentSignals,
    });
    const first = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000011", tag: "q" });
    expect(first.status).toBe(201);
    const now = Date.now();
    const wall = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const created = await quiet.handle(
      new Request("http://localhost/api/v1/mailings", {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ text: "quiet", start_time: wall(now + 86_400_000), end_time: wall(now + 2 * 86_400_000), tags_filter: ["q"] }),
      }),
    );
    expect(created.status).toBe(201);
    const mailingId = ((await created.json()) as { id: number }).id;
    const second = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000012", tag: "q" });
    expect(second.status).toBe(201);
    expect(await messagesOf(second.body.id)).toEqual([{ mailing_id: mailingId, status: "scheduled" }]);
    // Another tag is not planned, and a duplicate is still a 409 (both via the transaction path).
    const other = await call(1, "POST", "/api/v1/clients", { phone_number: "79200000013", tag: "r" });
    expect(await messagesOf(other.body.id)).toEqual([]);
    expect((await call(1, "POST", "/api/v1/clients", { phone_number: "79200000012", tag: "q" })).status).toBe(409);
    await quiet.handle(new Request(`http://localhost/api/v1/mailings/${mailingId}/cancel`, { method: "POST", headers: auth }));
  });

  /**
   * Another process's transaction, on a connection of its own: `first` runs, then the transaction
   * stays open until `release()`, when `then` (if any) runs and it commits. `ready` resolves with
   * what `first` returned.
   */
  function heldTransaction<T>(first: (tx: postgres.TransactionSql) => Promise<T>, then?: (tx: postgres.TransactionSql, value: T) => Promise<void>) {
    const connection = postgres(db.url!, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let ready!: (value: T) => void;
    const readyYet = new Promise<T>((resolve) => (ready = resolve));
    const done = connection.begin(async (tx) => {
      const value = await first(tx);
      ready(value);
      await released;
      if (then) await then(tx, value);
    });
    return {
      ready: Promise.race([readyYet, done.then(() => Promise.reject(new Error("ended before it was ready")))]),
      release,
      done,
      async end() {
        release();
        await done.catch(() => {});
        await connection.end({ timeout: 5 });
      },
    };
  }
  /** Until `count` sessions wait for a lock (a held transaction blocks them), or `settled()` says the statement did not wait. */
  const blocked = (settled: () => boolean, count = 1) =>
    waitFor(
      async () => (settled() || (await sessionsWaitingForLocks(db.database)) >= count ? true : undefined),
      10_000,
      `${count} session(s) to wait for a lock`,
      10,
    );
  const insertClient = (tx: postgres.TransactionSql, phone: string, tag: string) =>
    tx`insert into clients (phone_number, operator_code, tag, timezone, created_at, updated_at)
       values (${phone}, '920', ${tag}, 'UTC', now(), now()) returning id`.then(([row]) => row!.id as number);
  const insertMessage = (tx: postgres.TransactionSql, mailingId: number, clientId: number) =>
    tx`insert into messages (mailing_id, client_id, phone_number, status, due_at, expires_at, next_attempt_at, created_at, updated_at)
       values (${mailingId}, ${clientId}, '79200000099', 'scheduled', now() + interval '1 day', now() + interval '2 days',
               now() + interval '1 day', now(), now())`;
  /** Creates a mailing for the given tag that starts tomorrow (the request, not awaited). */
  const tomorrow = (text: string, tag: string) => {
    const now = Date.now();
    const wall = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    return call(0, "POST", "/api/v1/mailings", { text, start_time: wall(now + 86_400_000), end_time: wall(now + 2 * 86_400_000), tags_filter: [tag] });
  };

  test("a client written while a mailing is being planned is planned into it", async () => {
    // Another process's client write, still uncommitted when the mailing is created.
    const writer = heldTransaction((tx) => insertClient(tx, "79200000021", "w"));
    try {
      const clientId = await writer.ready;
      let settled = false;
      const mailing = tomorrow("racing", "w").finally(() => (settled = true));
      await blocked(() => settled);
      // The planning waits for the client write in flight instead of planning without it.
      expect(settled).toBe(false);
      writer.release();
      await writer.done;
      const created = await mailing;
      expect(created.status).toBe(201);
      expect(await messagesOf(clientId)).toEqual([{ mailing_id: created.body.id, status: "scheduled" }]);
    } finally {
      await writer.end();
    }
  });

  for (const action of ["cancel", "delete"] as const) {
    test(`${action} of a mailing waits for a client write that is planning itself into it`, async () => {
      const tag = `k${action}`;
      const mailing = await tomorrow(action, tag);
      expect(mailing.status).toBe(201);
      const mailingId = mailing.body.id as number;
      // Another process's client write, as ClientService does it: the client, then its message in
      // the open mailing, in one transaction that is not committed yet.
      const phone = action === "cancel" ? "79200000031" : "79200000032";
      const writer = heldTransaction(async (tx) => insertMessage(tx, mailingId, await insertClient(tx, phone, tag)));
      try {
        await writer.ready;
        let settled = false;
        const done = (action === "cancel"
          ? call(0, "POST", `/api/v1/mailings/${mailingId}/cancel`)
          : call(0, "DELETE", `/api/v1/mailings/${mailingId}`)
        ).finally(() => (settled = true));
        await blocked(() => settled);
        expect(settled).toBe(false); // it waits for the client write instead of missing its message
        writer.release();
        await writer.done;
        expect((await done).status).toBe(action === "cancel" ? 200 : 204);
        const left = await db.database.rows<{ status: string }>(sql`select status from messages where mailing_id = ${mailingId}`);
        expect(left.map((m) => m.status)).toEqual(action === "cancel" ? ["cancelled"] : []);
      } finally {
        await writer.end();
      }
    });
  }

  test("a mailing deleted between a client write's insert and its planning: both complete, no deadlock, nothing left", async () => {
    const mailing = await tomorrow("deleted while planning", "dl");
    expect(mailing.status).toBe(201);
    const mailingId = mailing.body.id as number;
    // Counter rows on every shard, as after traffic from several connections.
    await db.database.rows(sql`insert into mailing_counts (mailing_id, status, shard, n)
      select ${mailingId}, 'scheduled', s, 0 from generate_series(0, 3) s on conflict do nothing`);
    // A client write as ClientService does it: the client first, then (here: once released) its message.
    const writer = heldTransaction(
      (tx) => insertClient(tx, "79200000041", "dl"),
      async (tx, clientId) => void (await insertMessage(tx, mailingId, clientId)),
    );
    try {
      await writer.ready;
      let settled = false;
      const deleting = call(0, "DELETE", `/api/v1/mailings/${mailingId}`).finally(() => (settled = true));
      await blocked(() => settled); // the delete now waits for the client write
      writer.release();
      await writer.done; // a deadlock would abort one of the two
      expect((await deleting).status).toBe(204);
      expect(await db.database.rows(sql`select id from messages where mailing_id = ${mailingId}`)).toEqual([]);
      expect(await db.database.rows(sql`select n from mailing_counts_live where mailing_id = ${mailingId}`)).toEqual([]);
    } finally {
      await writer.end();
    }
  });

  test("client writes held back by a planning wait on a pool of their own: reads and statistics still answer", async () => {
    // A planning in another process holds the clients table (as planMailing does) for a while.
    const planning = heldTransaction((tx) => tx`lock table clients in share mode`);
    try {
      await planning.ready;
      // More client writes at once than a pool (10 connections) has.
      let settled = 0;
      const writes = Array.from({ length: 12 }, (_, i) =>
        call(0, "POST", "/api/v1/clients", { phone_number: `792000010${String(i).padStart(2, "0")}`, tag: "burst" }).finally(() => settled++),
      );
      // Every connection of the client-write pool (10) is taken by a write waiting for the planning.
      await blocked(() => settled > 0, 10);
      const within = <T>(ms: number, p: Promise<T>) => Promise.race([p, Bun.sleep(ms).then(() => "timed out" as const)]);
      expect(await within(5000, call(0, "GET", "/api/v1/stats").then((r) => r.status))).toBe(200);
      expect(await within(5000, call(0, "GET", "/api/v1/clients?limit=1").then((r) => r.status))).toBe(200);
      expect(settled).toBe(0); // the writes still wait for the planning: delayed, not refused
      planning.release();
      await planning.done;
      expect((await Promise.all(writes)).map((r) => r.status)).toEqual(Array(12).fill(201));
    } finally {
      await planning.end();
    }
  });
});

/** The database, and a count of the notifications its listeners have handled (each counted after its listener ran). */
function counting(own: Database): { database: Database; counter: { count: number } } {
  const counter = { count: 0 };
  const database = new Proxy(own, {
    get(target, property, receiver) {
      if (property !== "listen") return Reflect.get(target, property, receiver);
      return (channel: string, onMessage: (payload: string) => void) =>
        target.listen(channel, (payload) => {
          onMessage(payload);
          counter.count++;
        });
    },
  });
  return { database, counter };
}
