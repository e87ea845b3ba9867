/** The whole delivery path in one process: app + dispatcher + a fake gateway on a real socket. */
import { Dispatcher, type DispatcherOptions } from "../../src/dispatch/dispatcher";
import type { Database } from "../../src/db/client";
import type { Signals } from "../../src/dispatch/signals";
import { HttpGateway } from "../../src/gateway/http";
import { type FakeGateway, type FakeGatewayOptions, startFakeGateway } from "../../src/gateway/fake-server";
import { type TestApp, testApp } from "./app";
import type { Backend } from "./db";
import { adopt, currentOwner } from "./lifetime";

export type TestEngine = TestApp & {
  dispatcher: Dispatcher;
  gateway: FakeGateway;
  /** rows of the messages table, for assertions */
  messages(mailingId?: number): Promise<MessageRow[]>;
  /** creates a client through the API (asserting 201) and returns its id */
  client(phone: string, timezone?: string, tag?: string): Promise<number>;
  /** creates a mailing through the API (text "hello" unless given; asserting 201) and returns its id */
  mailing(body: Record<string, unknown>): Promise<number>;
};

export type MessageRow = {
  id: number;
  mailing_id: number;
  client_id: number;
  phone_number: string;
  status: string;
  attempts: number;
  due_at: string;
  expires_at: string;
  next_attempt_at: string;
  sent_at: string | null;
  last_error: string | null;
};

export async function testEngine(
  backend: Backend,
  options: {
    now?: string;
    gateway?: FakeGatewayOptions;
    /** the HTTP gateway's timeout per send (default 2000 ms) */
    gatewayTimeoutMs?: number;
    dispatcher?: Partial<DispatcherOptions>;
    /** what the dispatcher sees of the database (e.g. one that fails on demand); the app uses the real one */
    dispatcherDatabase?: (database: Database) => Database;
  } = {},
): Promise<TestEngine> {
  let dispatcher: Dispatcher | null = null;
  const signals: Signals = {
    wake: () => dispatcher?.wake(),
    mailingChanged: (id) => dispatcher?.mailingChanged(id),
    clientChanged: () => dispatcher?.clientChanged(),
  };
  const owner = currentOwner();
  const t = await testApp(backend, { now: options.now, signals });
  const gateway = startFakeGateway(options.gateway);
  dispatcher = new Dispatcher(
    options.dispatcherDatabase ? options.dispatcherDatabase(t.database) : t.database,
    new HttpGateway({ baseUrl: gateway.url, token: "gw-token", timeoutMs: options.gatewayTimeoutMs ?? 2000 }),
    t.clock,
    t.logger,
    { concurrency: 10, claimBatch: 50, leaseSeconds: 60, retryDelaySeconds: 300, tick: null, ...options.dispatcher },
  );
  const d = dispatcher;
  // Ends with its test (lifetime.ts); a test that timed out meanwhile gets an error instead.
  const close = await adopt(owner, async () => {
    await d.stop(1000);
    await gateway.stop();
    await t.close();
  });
  return {
    ...t,
    dispatcher: d,
    gateway,
    async client(phone, timezone = "UTC", tag = "") {
      const r = await t.request("POST", "/api/v1/clients", { phone_number: phone, timezone, tag });
      if (r.status !== 201) throw new Error(`creating client ${phone}: ${r.status} ${r.text}`);
      return r.body.id as number;
    },
    async mailing(body) {
      const r = await t.request("POST", "/api/v1/mailings", { text: "hello", ...body });
      if (r.status !== 201) throw new Error(`creating mailing: ${r.status} ${r.text}`);
      return r.body.id as number;
    },
    async messages(mailingId) {
      const { sql } = await import("drizzle-orm");
      return t.database.rows<MessageRow>(sql`
        select id, mailing_id, client_id, phone_number, status, attempts,
          to_char(due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as due_at,
          to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as expires_at,
          case when next_attempt_at = 'infinity' then 'infinity'
               else to_char(next_attempt_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') end as next_attempt_at,
          to_char(sent_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as sent_at, last_error
        from messages ${mailingId === undefined ? sql`` : sql`where mailing_id = ${mailingId}`} order by id`);
    },
    close,
  };
}
