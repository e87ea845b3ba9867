/** Issue 15 item 6: Idempotency-Key on POST /api/v1/clients, /mailings and the CSV import. */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { idempotency, keyScope, requestHash } from "../../src/http/idempotency";
import { auth, type TestApp, testApp } from "../support/app";
import { backends, sessionsWaitingForLocks } from "../support/db";
import { type FaultControl, faultyDatabase, sqlText } from "../support/faulty-db";
import { waitFor } from "../support/wait";
import { expectProblem } from "./expect-problem";

setDefaultTimeout(60_000);

const day = "2026-12-01";

for (const backend of backends()) {
  describe(`[${backend}] Idempotency-Key`, () => {
    let t: TestApp;
    afterEach(() => t?.close());
    const json = (key: string) => ({ ...auth, "content-type": "application/json", "idempotency-key": key });

    test("the same key and body return the first answer and create nothing; another body is a 422", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      const body = JSON.stringify({ phone_number: "79101234567", tag: "a" });
      const first = await t.request("POST", "/api/v1/clients", body, json("k-1"));
      expect(first.status).toBe(201);
      const again = await t.request("POST", "/api/v1/clients", body, json("k-1"));
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      // The replay is the first answer, headers that matter included.
      expect(again.headers.get("location")).toBe(`/api/v1/clients/${first.body.id}`);
      expect(again.headers.get("location")).toBe(first.headers.get("location"));
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      const other = await t.request("POST", "/api/v1/clients", JSON.stringify({ phone_number: "79101234568" }), json("k-1"));
      expectProblem(other, 422, ["Idempotency-Key"]);
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      // Without a key, the same body is a new request (here: a duplicate phone).
      expect((await t.request("POST", "/api/v1/clients", body, { ...auth, "content-type": "application/json" })).status).toBe(409);
    });

    test("a body over the route's limit is a 413 read no further than the limit, with or without Content-Length", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      // A chunked body of up to 64 MiB: the key's request hash must not hold it all before the 1 MiB limit answers.
      let pulled = 0;
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (pulled >= 64 * 1024 * 1024) return controller.close();
          pulled += 64 * 1024;
          controller.enqueue(new Uint8Array(64 * 1024).fill(32));
        },
      });
      const r = await t.request("POST", "/api/v1/clients", endless, json("big-1"));
      expectProblem(r, 413, ["body"]);
      expect(pulled).toBeLessThan(4 * 1024 * 1024);
      const declared = await t.request("POST", "/api/v1/mailings", " ".repeat(2 * 1024 * 1024), json("big-2"));
      expectProblem(declared, 413, ["body"]);
      // Nothing is kept for either key.
      expect(await t.database.rows(sql`select key from idempotency_keys`)).toEqual([]);
    });

    test("a create whose answer cannot be kept (the database fails just then) still answers what it created, and keeps it later", async () => {
      let control: FaultControl | null = null;
      t = await testApp(backend, {
        now: `${day}T10:00:00Z`,
        idempotencyTiming: { leaseMs: 60_000, heartbeatMs: 100 },
        appDatabase: (database) => {
          const view = faultyDatabase(database);
          control = view.control;
          return view.database;
        },
      });
      control!.fails = (text) => /update idempotency_keys set status/.test(text);
      const body = JSON.stringify({ phone_number: "79101234567" });
      const created = await t.request("POST", "/api/v1/clients", body, json("k-kept"));
      // The client exists: a 5xx would tell the caller it was not written.
      expect(created.status).toBe(201);
      expect(created.body.phone_number).toBe("79101234567");
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      expect(t.logger.lines.some((l) => l.msg === "idempotency answer not kept" && l.level === "warn")).toBe(true);
      // While the database refuses the answer, a retry with the key is a 409 and creates nothing…
      expectProblem(await t.request("POST", "/api/v1/clients", body, json("k-kept")), 409, ["Idempotency-Key"]);
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      // …and once it takes writes again, the answer kept in the background is replayed.
      control!.fails = () => false;
      const deadline = Date.now() + 20_000;
      while (!t.logger.lines.some((l) => l.msg === "idempotency answer kept")) {
        if (Date.now() > deadline) throw new Error("the answer was never kept");
        await Bun.sleep(20);
      }
      const again = await t.request("POST", "/api/v1/clients", body, json("k-kept"));
      expect([again.status, again.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
      expect(again.body).toEqual(created.body);
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
    });

    test("an answer kept in the background is tried once at a time: a slow database gets no pile of the same write", async () => {
      // The first write of the answer is refused; the next ones hang until the test lets them through
      // (a database that answers slowly, up to its statement timeout).
      let refused = false;
      let started = 0;
      const waiting: (() => void)[] = [];
      t = await testApp(backend, {
        now: `${day}T10:00:00Z`,
        idempotencyTiming: { leaseMs: 60_000, heartbeatMs: 20 },
        appDatabase: (database) => {
          const db = new Proxy(database.db, {
            get(target, prop, receiver) {
              if (prop !== "execute") return Reflect.get(target, prop, receiver);
              return (query: Parameters<typeof target.execute>[0]) => {
                if (!/update idempotency_keys set status/.test(sqlText(query))) return target.execute(query);
                if (!refused) {
                  refused = true;
                  return Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432 (test)"), { code: "ECONNREFUSED" }));
                }
                started++;
                return new Promise((resolve, reject) => waiting.push(() => Promise.resolve(target.execute(query)).then(resolve, reject)));
              };
            },
          });
          return { ...database, db } as typeof database;
        },
      });
      const body = JSON.stringify({ phone_number: "79101234567" });
      expect((await t.request("POST", "/api/v1/clients", body, json("k-slow"))).status).toBe(201);
      for (const deadline = Date.now() + 10_000; started === 0; await Bun.sleep(5)) {
        if (Date.now() > deadline) throw new Error("the answer was never tried again");
      }
      // Twenty retry periods with the first try still running: no second try meanwhile.
      await Bun.sleep(400);
      expect(started).toBe(1);
      for (const go of waiting.splice(0)) go();
      for (const deadline = Date.now() + 10_000; !t.logger.lines.some((l) => l.msg === "idempotency answer kept"); await Bun.sleep(5)) {
        if (Date.now() > deadline) throw new Error("the answer was never kept");
      }
      const again = await t.request("POST", "/api/v1/clients", body, json("k-slow"));
      expect([again.status, again.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
      expect(t.logger.lines.filter((l) => l.msg === "idempotency answer kept")).toHaveLength(1);
    });

    test("a 2xx answer whose body fails while it is read frees the key and stops its heartbeat: the key is not held for the process's life", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      // The wrap alone, around a handler whose 201 body breaks after its work (a stream that errors).
      const wrap = idempotency(t.database, t.clock, () => {}, t.logger, { leaseMs: 60_000, heartbeatMs: 10 });
      let runs = 0;
      const handler = wrap(async () => {
        runs++;
        const broken = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.error(new Error("the answer's body broke (test)"));
          },
        });
        return new Response(broken, { status: 201, headers: { "content-type": "application/json" } });
      });
      const send = () =>
        handler(new Request("http://x/api/v1/clients", { method: "POST", headers: json("k-broken"), body: "{}" }));
      await expect(send()).rejects.toThrow("the answer's body broke (test)");
      // Past the lease on the clock, with time for many heartbeats: none renews the key.
      t.clock.advance(61);
      await Bun.sleep(100);
      expect(await t.database.rows(sql`select key from idempotency_keys where key = 'k-broken' and created_at > ${`${day}T10:00:30Z`}::timestamptz`)).toEqual([]);
      // A retry runs again (it is not a 409 for as long as the process lives).
      await expect(send()).rejects.toThrow("the answer's body broke (test)");
      expect(runs).toBe(2);
    });

    test("a key held without an answer by a request that stopped (its process killed) is taken over by the same request after the lease", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      const body = JSON.stringify({ phone_number: "79101234567" });
      const headers = json("k-killed");
      // What a process killed inside the handler leaves: the key claimed, no answer, no heartbeat since.
      // No holder: also what a request of a version before drizzle/0008 leaves, taken over the same way.
      const probe = new Request("http://x/api/v1/clients", { method: "POST", headers, body });
      const hash = await requestHash("application/json", new TextEncoder().encode(body));
      await t.database.rows(sql`insert into idempotency_keys (scope, key, request_hash, created_at)
        values (${keyScope("/api/v1/clients", probe)}, 'k-killed', ${hash}, ${t.clock.now().toISOString()}::timestamptz)`);
      expectProblem(await t.request("POST", "/api/v1/clients", body, headers), 409, ["Idempotency-Key"]);
      t.clock.advance(59);
      expectProblem(await t.request("POST", "/api/v1/clients", body, headers), 409, ["Idempotency-Key"]);
      // Another request under the key stays a 422, lease or not.
      t.clock.advance(2);
      expectProblem(await t.request("POST", "/api/v1/clients", JSON.stringify({ phone_number: "79101234568" }), headers), 422, ["Idempotency-Key"]);
      const retried = await t.request("POST", "/api/v1/clients", body, headers);
      expect([retried.status, retried.headers.get("idempotent-replayed")]).toEqual([201, null]);
      expect(t.logger.lines.find((l) => l.msg === "idempotency key taken over")).toMatchObject({ level: "warn", route: "/api/v1/clients" });
      const replay = await t.request("POST", "/api/v1/clients", body, headers);
      expect([replay.status, replay.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
      expect(replay.body).toEqual(retried.body);
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
      // A key reused after 24 h is no takeover of a stopped request: no warning for it.
      const reused = t.logger.lines.filter((l) => l.msg === "idempotency key taken over").length;
      t.clock.advance(24 * 3600);
      expect((await t.request("POST", "/api/v1/clients", body, headers)).status).toBe(409);
      expect(t.logger.lines.filter((l) => l.msg === "idempotency key taken over").length).toBe(reused);
    });

    test("a request whose key was taken over while it still ran (its heartbeat stalled) touches nothing of the new holder's: its failure leaves the key held, the retry's answer is kept", async () => {
      // Each client insert waits until the test lets it go: the first (the original request) then
      // fails, the next ones (the retry) go through.
      const gates: (() => void)[] = [];
      t = await testApp(backend, {
        now: `${day}T10:00:00Z`,
        // A heartbeat that never beats within the test: the original's has stalled.
        idempotencyTiming: { leaseMs: 60_000, heartbeatMs: 3_600_000 },
        appDatabase: (database) => {
          // Client writes go through their own handle (db/client.ts: `writes`).
          const writes = new Proxy(database.writes, {
            get(target, prop, receiver) {
              if (prop !== "execute") return Reflect.get(target, prop, receiver);
              return (query: Parameters<typeof target.execute>[0]) => {
                if (!/insert into clients/.test(sqlText(query))) return target.execute(query);
                const n = gates.length;
                return new Promise((resolve, reject) =>
                  gates.push(() => (n === 0 ? reject(new Error("the original request fails late (test)")) : Promise.resolve(target.execute(query)).then(resolve, reject))),
                );
              };
            },
          });
          return { ...database, writes } as typeof database;
        },
      });
      const reached = (n: number) => waitFor(() => (gates.length >= n ? true : undefined), 10_000, `gated statement ${n}`, 5);
      const body = JSON.stringify({ phone_number: "79101234567" });
      const headers = json("k-stalled");
      const original = t.request("POST", "/api/v1/clients", body, headers);
      await reached(1);
      // Past the lease without a heartbeat: the retry takes the key over and runs, still running.
      t.clock.advance(61);
      const retry = t.request("POST", "/api/v1/clients", body, headers);
      await reached(2);
      expect(t.logger.lines.some((l) => l.msg === "idempotency key taken over")).toBe(true);
      // The original ends now, in failure: it must not free the retry's key.
      gates[0]!();
      expect((await original).status).toBeGreaterThanOrEqual(500);
      const held = await t.database.rows<{ status: number | null }>(sql`select status from idempotency_keys where key = 'k-stalled'`);
      expect(held).toEqual([{ status: null }]);
      // A third try meanwhile is a 409 (the retry still runs) and creates nothing.
      expectProblem(await t.request("POST", "/api/v1/clients", body, headers), 409, ["Idempotency-Key"]);
      expect(gates).toHaveLength(2);
      gates[1]!();
      const retried = await retry;
      expect([retried.status, retried.headers.get("idempotent-replayed")]).toEqual([201, null]);
      // The retry's answer is kept and replayed.
      const replay = await t.request("POST", "/api/v1/clients", body, headers);
      expect([replay.status, replay.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
      expect(replay.body).toEqual(retried.body);
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(1);
    });

    test("a request whose key was taken over while it still ran stores no answer over the new holder's hold when it succeeds late", async () => {
      const gates: (() => void)[] = [];
      t = await testApp(backend, {
        now: `${day}T10:00:00Z`,
        idempotencyTiming: { leaseMs: 60_000, heartbeatMs: 3_600_000 },
        appDatabase: (database) => {
          const db = new Proxy(database.db, {
            get(target, prop, receiver) {
              // The mailing's transaction (its insert and plan) waits until the test lets it go.
              if (prop !== "transaction") return Reflect.get(target, prop, receiver);
              return (...args: Parameters<typeof target.transaction>) =>
                new Promise((resolve, reject) => gates.push(() => target.transaction(...args).then(resolve, reject)));
            },
          });
          return { ...database, db } as typeof database;
        },
      });
      const reached = (n: number) => waitFor(() => (gates.length >= n ? true : undefined), 10_000, `gated statement ${n}`, 5);
      // A mailing: running the same create twice makes two (no unique phone to refuse the second).
      const body = JSON.stringify({ text: "hi", start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      const headers = json("k-late");
      const original = t.request("POST", "/api/v1/mailings", body, headers);
      await reached(1);
      t.clock.advance(61);
      const retry = t.request("POST", "/api/v1/mailings", body, headers);
      await reached(2);
      // The original succeeds now: its work is committed and answered, but the key is the retry's.
      gates[0]!();
      const first = await original;
      expect(first.status).toBe(201);
      expect(await t.database.rows<{ status: number | null }>(sql`select status from idempotency_keys where key = 'k-late'`)).toEqual([{ status: null }]);
      expectProblem(await t.request("POST", "/api/v1/mailings", body, headers), 409, ["Idempotency-Key"]);
      expect(t.logger.lines.find((l) => l.msg === "idempotency key taken over while its request ran")).toMatchObject({ level: "warn", route: "/api/v1/mailings" });
      gates[1]!();
      const second = await retry;
      expect(second.status).toBe(201);
      const replay = await t.request("POST", "/api/v1/mailings", body, headers);
      expect([replay.status, replay.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
      expect(replay.body).toEqual(second.body);
    });

    test("with the database away, a request with a key is a 503 with Retry-After, not a 500", async () => {
      let control: FaultControl | null = null;
      t = await testApp(backend, {
        now: `${day}T10:00:00Z`,
        appDatabase: (database) => {
          const view = faultyDatabase(database);
          control = view.control;
          return view.database;
        },
      });
      control!.fails = (text) => /idempotency_keys/.test(text);
      const r = await t.request("POST", "/api/v1/mailings", JSON.stringify({ text: "hi", start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` }), json("k-down"));
      control!.fails = () => false;
      expectProblem(r, 503);
      expect(r.headers.get("retry-after")).toBe("2");
      expect((await t.request("GET", "/api/v1/mailings")).body.items).toHaveLength(0);
    });

    test("mailings and the import; a refused request leaves the key free; keys expire after 24 h", async () => {
      t = await testApp(backend, { now: `${day}T10:00:00Z` });
      const mailing = JSON.stringify({ text: "hi", start_time: `${day}T09:00:00`, end_time: `${day}T21:00:00` });
      const m1 = await t.request("POST", "/api/v1/mailings", mailing, json("m"));
      const m2 = await t.request("POST", "/api/v1/mailings", mailing, json("m"));
      expect([m1.status, m2.status]).toEqual([201, 201]);
      expect(m2.body.id).toBe(m1.body.id);
      expect(m2.headers.get("location")).toBe(m1.headers.get("location"));
      expect((await t.request("GET", "/api/v1/mailings")).body.items).toHaveLength(1);

      const csv = "phone_number\n79101234567\n79101234568\n";
      const headers = { ...auth, "content-type": "text/csv", "idempotency-key": "import-1" };
      const i1 = await t.request("POST", "/api/v1/clients/import", csv, headers);
      const i2 = await t.request("POST", "/api/v1/clients/import", csv, headers);
      expect(i1.body).toMatchObject({ created: 2 });
      expect(i2.body).toEqual(i1.body);

      // A multipart upload sent again (a new random boundary each time, as curl -F does) is the same
      // request; another file under the same key is not.
      const upload = (text: string, boundary: string) =>
        t.request("POST", "/api/v1/clients/import", `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\nContent-Type: text/csv\r\n\r\n${text}\r\n--${boundary}--\r\n`, {
          ...auth,
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "idempotency-key": "upload-1",
        });
      const u1 = await upload("phone_number\n79101234570\n", "----first1234");
      const u2 = await upload("phone_number\n79101234570\n", "----second5678");
      expect(u1.body).toMatchObject({ created: 1 });
      expect([u2.status, u2.headers.get("idempotent-replayed")]).toEqual([u1.status, "true"]);
      expect(u2.body).toEqual(u1.body);
      expectProblem(await upload("phone_number\n79101234571\n", "----third9012"), 422, ["Idempotency-Key"]);

      const bad = JSON.stringify({ phone_number: "12" });
      expect((await t.request("POST", "/api/v1/clients", bad, json("c"))).status).toBe(422);
      const fixed = await t.request("POST", "/api/v1/clients", bad, json("c"));
      expect(fixed.status).toBe(422);
      expect(fixed.headers.get("idempotent-replayed")).toBeNull();

      // After 24 h the key is forgotten: the same request runs again (here: the phone exists by now).
      const late = JSON.stringify({ phone_number: "79101234599" });
      expect((await t.request("POST", "/api/v1/clients", late, json("late"))).status).toBe(201);
      t.clock.advance(24 * 3600 - 1);
      expect((await t.request("POST", "/api/v1/clients", late, json("late"))).status).toBe(201);
      t.clock.advance(2);
      expect((await t.request("POST", "/api/v1/clients", late, json("late"))).status).toBe(409);
    });
  });
}

/**
 * A second request with the key while the first still runs: real concurrency on PostgreSQL. A
 * transaction holding the clients table in SHARE mode keeps the first import waiting inside its
 * handler (the key claimed, its rows not written) for as long as the test wants: no timing.
 */
describe.skipIf(!process.env.DATABASE_URL)("[postgres] Idempotency-Key while the first request runs (needs DATABASE_URL)", () => {
  let t: TestApp;
  afterEach(() => t?.close());

  test("the same key during a running import is a 409 naming the header and writes nothing; afterwards the first answer is replayed", async () => {
    t = await testApp("postgres", { now: `${day}T10:00:00Z`, idempotencyTiming: { leaseMs: 60_000, heartbeatMs: 50 } });
    const csv = "phone_number,tag\n79101234567,a\n79101234568,b\n";
    const headers = (key: string, id: string) => ({ ...auth, "content-type": "text/csv", "idempotency-key": key, "x-request-id": id });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const blocker = t.database.db.transaction(async (tx) => {
      await tx.execute(sql`lock table clients in share mode`);
      locked();
      await held;
    });
    let first: Promise<unknown> | undefined;
    try {
      await lockTaken;
      first = t.request("POST", "/api/v1/clients/import", csv, headers("slow", "first"));
      const deadline = Date.now() + 30_000;
      while ((await sessionsWaitingForLocks(t.database)) < 1) {
        if (Date.now() > deadline) throw new Error("the import never waited for the lock");
        await Bun.sleep(20);
      }
      const during = await t.request("POST", "/api/v1/clients/import", csv, headers("slow", "during"));
      expectProblem(during, 409, ["Idempotency-Key"]);
      expect(during.headers.get("x-request-id")).toBe("during");
      expect(during.headers.get("idempotent-replayed")).toBeNull();
      // Another body under the same key is still a 422, running or not.
      expectProblem(await t.request("POST", "/api/v1/clients/import", "phone_number\n79101234569\n", headers("slow", "other")), 422, ["Idempotency-Key"]);
      // The refusals are logged like any answer.
      expect(t.logger.lines.find((l) => l.msg === "request" && l.request_id === "during")).toMatchObject({ status: 409, route: "/api/v1/clients/import" });
      // A request running longer than the lease keeps its key: its heartbeat renews it.
      t.clock.advance(120);
      const renewed = t.clock.now().getTime();
      const renewedAt = async () => (await t.database.rows<{ ms: number }>(sql`select (extract(epoch from created_at) * 1000)::float8 as ms from idempotency_keys where key = 'slow'`))[0]?.ms;
      while (!((await renewedAt())! >= renewed)) {
        if (Date.now() > deadline) throw new Error("the running request's key was never renewed");
        await Bun.sleep(20);
      }
      expectProblem(await t.request("POST", "/api/v1/clients/import", csv, headers("slow", "later")), 409, ["Idempotency-Key"]);
      expect(t.logger.lines.some((l) => l.msg === "idempotency key taken over")).toBe(false);
      release();
      await blocker;
      const done = (await first) as Awaited<ReturnType<TestApp["request"]>>;
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ created: 2 });
      const after = await t.request("POST", "/api/v1/clients/import", csv, headers("slow", "after"));
      expect(after.status).toBe(200);
      expect(after.body).toEqual(done.body);
      expect(after.headers.get("idempotent-replayed")).toBe("true");
      expect((await t.request("GET", "/api/v1/clients")).body.items).toHaveLength(2);
    } finally {
      release();
      await blocker.catch(() => {});
      await first?.catch(() => {});
    }
  });
});
