/** An app on a fresh database with a fixed clock, and a small client for `app.handle()`. */
import { type AppDeps, createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import type { Database } from "../../src/db/client";
import { type Signals, silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { type Backend, freshDatabase } from "./db";
import { adopt, alive, currentOwner } from "./lifetime";

export const adminKey = "test-admin-key-0123456789";
export const auth = { authorization: `Bearer ${adminKey}` };

export type Reply = { status: number; body: any; headers: Headers; text: string };

export type TestApp = {
  database: Database;
  clock: FixedClock;
  logger: ReturnType<typeof memoryLogger>;
  /** Sends a request; a body other than a string, FormData, Blob or stream is sent as JSON. Adds the admin key unless headers say otherwise. */
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  close(): Promise<void>;
};

export async function testApp(
  backend: Backend,
  options: {
    now?: string;
    signals?: Signals;
    config?: Partial<AppDeps["config"]>;
    /** what the app sees of the database (e.g. one that fails on demand, support/faulty-db.ts) */
    appDatabase?: (database: Database) => Database;
    /** the Idempotency-Key's lease and heartbeat (default 60 s and 15 s) */
    idempotencyTiming?: AppDeps["idempotencyTiming"];
  } = {},
): Promise<TestApp> {
  const owner = currentOwner();
  const { database, drop } = await freshDatabase(backend);
  const clock = new FixedClock(options.now ?? "2026-12-01T00:00:00Z");
  const logger = memoryLogger();
  const app = await createApp({
    // The database deadline of main.ts (its default), so that every PostgreSQL test runs under it.
    config: { adminApiKey: adminKey, dbRequestTimeoutMs: 30_000, ...options.config },
    database: options.appDatabase ? options.appDatabase(database) : database,
    clock,
    logger,
    signals: options.signals ?? silentSignals,
    idempotencyTiming: options.idempotencyTiming,
  }).catch(async (error) => {
    await drop();
    throw error;
  });
  // Ends with its test (lifetime.ts); a test that timed out meanwhile gets an error instead.
  const close = await adopt(owner, async () => {
    await app.close();
    await drop();
  });
  return {
    database,
    clock,
    logger,
    async request(method, path, body, headers = auth) {
      // A test body that timed out runs on; it must not reach an app of the next test.
      if (!alive(owner)) throw new Error(`${method} ${path}: the test that made this app has ended`);
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        const raw = typeof body === "string" || body instanceof FormData || body instanceof Blob || body instanceof ReadableStream;
        init.body = raw ? (body as BodyInit) : JSON.stringify(body);
        if (!raw) (init.headers as Record<string, string>)["content-type"] = "application/json";
      }
      // A one-letter origin on purpose: routing must read the path only (src/http/origin.ts).
      const response = await app.handle(new Request(`http://x${path}`, init));
      const text = await response.text();
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = text;
      }
      return { status: response.status, body: parsed, headers: response.headers, text };
    },
    close,
  };
}
