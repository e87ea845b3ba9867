/**
 * `Idempotency-Key` on the create routes (POST /api/v1/clients, /api/v1/mailings,
 * /api/v1/clients/import; issue 15 item 6): the same key and the same request within 24 hours get
 * the first answer again (`Idempotent-Replayed: true`) and create nothing; the same key with another
 * request is a 422 naming the header; while the first is still running, a 409.
 *
 * Keys are per caller (a hash of the Authorization header, or the session cookie) and per route.
 * The request is hashed before anything runs, so a body is read whole first, up to the route's
 * limit (1 MiB; the import's CSV is held in memory with a key, at most 50 MB): past it, a 413. Only 2xx answers are kept; after another answer
 * the key is free again (nothing was created). A wrap around the app (`app.wrap`), like routeByPath.
 *
 * A running request holds its key by a heartbeat: every `heartbeatMs` it moves the key's
 * `created_at` to now. A key without an answer whose heartbeat stopped for `leaseMs` (its process
 * was killed, or lost the database) is taken over by a retry of the same request, which runs again
 * — a request killed after its work committed may so run twice, as a retry without a key would;
 * before, such a key answered 409 for 24 hours. An answer the database refused to keep is tried
 * again in the background (the heartbeat goes on meanwhile), at most `pendingAnswers` at once.
 *
 * Each claim and each takeover writes a new `holder` token, and a request releases, renews and
 * answers its key only while the token is still its own: a request that was in fact still running
 * when a retry took its key over (its heartbeat stalled for the lease, or clocks differ between
 * processes) ends without touching the retry's hold. Its own work stays done and is answered to its
 * caller; the key keeps whatever the retry answers. Rows written before drizzle/0008 (or by a
 * process of an older version during a rollout) have no holder: without an answer they are taken
 * over after the lease like any other, and no request of this version treats them as its own. An
 * older version's takeover keeps the token it found (and its release and answer ignore tokens), so
 * the guarantee holds only once every process runs this version.
 */
import { createHash, randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Clock } from "../clock";
import { type Database, rowsOf } from "../db/client";
import { describeError, type Logger } from "../ops/logger";
import { Problem, problemResponse } from "../problems";
import { jsonBodyLimit } from "./body";
import { databaseUnavailable, unavailableResponse } from "./unavailable";

const routes = new Set(["/api/v1/clients", "/api/v1/mailings", "/api/v1/clients/import"]);
const maxBody = 50 * 1024 * 1024;
const keyPattern = /^[\x21-\x7e]{1,255}$/;

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

export type IdempotencyTiming = {
  /** how long a key without an answer and without a heartbeat is held before a retry takes it over */
  leaseMs: number;
  /** how often a running request (or an answer waiting to be kept) renews its key */
  heartbeatMs: number;
};
export const defaultIdempotencyTiming: IdempotencyTiming = { leaseMs: 60_000, heartbeatMs: 15_000 };
/** answers waiting in memory to be kept after the database refused them; past this the oldest is dropped */
const pendingAnswers = 1000;

/** Who holds a key: the route and the caller's credentials (exported for tests). */
export const keyScope = (path: string, request: Request) => sha256(`${path}\n${request.headers.get("authorization") ?? request.headers.get("cookie") ?? ""}`);

/**
 * `onRoute` learns the route of a request this wrap answers itself (a replay, a 409, a 422): the
 * three paths are their own route templates, so the request log and metrics name them.
 */
export function idempotency(database: Database, clock: Clock, onRoute: (route: string) => void, logger: Logger, timing: IdempotencyTiming = defaultIdempotencyTiming) {
  const withKey = keyed(database, clock, onRoute, logger, timing);
  return (handle: (request: Request) => unknown) => {
    const inner = withKey(handle);
    return async (request: Request): Promise<unknown> => {
      try {
        return await inner(request);
      } catch (error) {
        // The key's own statements run outside the app's error handler: the database away is a
        // 503 with Retry-After here too, never a 500.
        if (databaseUnavailable(error)) return unavailableResponse(error, request, logger);
        throw error;
      }
    };
  };
}

function keyed(database: Database, clock: Clock, onRoute: (route: string) => void, logger: Logger, timing: IdempotencyTiming) {
  const keeper = new AnswerKeeper(database, clock, logger, timing);
  return (handle: (request: Request) => unknown) =>
    async (request: Request): Promise<unknown> => {
      const key = request.headers.get("idempotency-key");
      if (key === null || request.method !== "POST") return handle(request);
      const path = new URL(request.url).pathname.replace(/\/+$/, "");
      if (!routes.has(path)) return handle(request);
      onRoute(path);
      if (!keyPattern.test(key)) {
        return problemResponse(new Problem(422, "Idempotency-Key: must be 1–255 visible ASCII characters", [{ field: "Idempotency-Key", message: "must be 1–255 visible ASCII characters" }]));
      }
      // Read no further than the route's own limit (1 MiB for JSON, 50 MB for the import): the
      // server takes bodies up to 1 GiB, and this runs before authentication and the app's checks.
      const limit = path === "/api/v1/clients/import" ? maxBody : jsonBodyLimit;
      const body = await readCapped(request, limit);
      if (body === null) {
        const detail = limit === maxBody ? `with an Idempotency-Key the body may be at most ${maxBody} bytes` : `the body is larger than ${limit} bytes`;
        return problemResponse(new Problem(413, detail, [{ field: "body", message: "too large" }]));
      }
      const scope = keyScope(path, request);
      const hash = await requestHash(request.headers.get("content-type") ?? "", body);
      const now = clock.now();
      const at = now.toISOString();
      const holder = randomUUID();
      // Claim the key, or read what holds it. Taken over: a key older than 24 h, and a key of the same
      // request without an answer whose heartbeat stopped for the lease (its process is gone).
      const [row] = await rowsOf<{ request_hash: string; status: number | null; content_type: string | null; body: string | null; abandoned: boolean }>(
        database.db,
        sql`with old as (select status, created_at from idempotency_keys where scope = ${scope} and key = ${key})
            insert into idempotency_keys as k (scope, key, request_hash, created_at, holder)
            values (${scope}, ${key}, ${hash}, ${at}::timestamptz, ${holder}::uuid)
            on conflict (scope, key) do update set request_hash = excluded.request_hash, status = null,
              content_type = null, body = null, created_at = excluded.created_at, holder = excluded.holder
              where k.created_at <= ${at}::timestamptz - interval '24 hours'
                or (k.status is null and k.request_hash = excluded.request_hash
                    and k.created_at <= ${at}::timestamptz - make_interval(secs => ${timing.leaseMs / 1000}))
            returning request_hash, status, content_type, body,
              coalesce((select old.status is null and old.created_at > ${at}::timestamptz - interval '24 hours' from old), false) as abandoned`,
      );
      if (!row) {
        const [held] = await rowsOf<{ request_hash: string; status: number | null; content_type: string | null; body: string | null }>(
          database.db,
          sql`select request_hash, status, content_type, body from idempotency_keys where scope = ${scope} and key = ${key}`,
        );
        if (held && held.request_hash !== hash) {
          return problemResponse(new Problem(422, "Idempotency-Key: already used for another request", [{ field: "Idempotency-Key", message: "was used with another request in the last 24 hours" }]));
        }
        if (held && held.status !== null) {
          const headers: Record<string, string> = { "content-type": held.content_type ?? "application/json", "idempotent-replayed": "true" };
          const location = createdLocation(path, held.status, held.body);
          if (location) headers.location = location;
          return new Response(held.body, { status: held.status, headers });
        }
        return problemResponse(new Problem(409, "a request with this Idempotency-Key is still running", [{ field: "Idempotency-Key", message: "in use by a request still running" }]));
      }
      if (row.abandoned) logger.warn("idempotency key taken over", { route: path, reason: "held without an answer past its lease (its request stopped)" });
      const hold: Hold = { scope, key, holder };
      const heartbeat = keeper.heartbeat(hold);
      let response: Response;
      let text: string | null = null;
      try {
        response = (await handle(new Request(request, { body }))) as Response;
        // Reading the answer to keep can fail too (a body that breaks): the heartbeat must stop then,
        // or it renews the key for the process's life and every retry is a 409.
        const kept = response.status >= 200 && response.status < 300 && !response.headers.get("content-type")?.includes("ndjson");
        if (kept) text = await response.text();
      } catch (error) {
        heartbeat.stop();
        await release(database, hold);
        throw error;
      }
      if (text === null) {
        heartbeat.stop();
        await release(database, hold);
        return response;
      }
      const answer = { status: response.status, contentType: response.headers.get("content-type"), body: text };
      let keptNow = false;
      try {
        const ours = await keepAnswer(database, hold, answer);
        heartbeat.stop();
        keptNow = true;
        if (!ours) lostHold(logger, path);
      } catch (error) {
        // The request's work is committed: answer it. The key stays held without an answer (a retry
        // meanwhile is a 409 and creates nothing) while the answer is tried again in the background.
        logger.warn("idempotency answer not kept", { route: path, status: response.status, error: describeError(error) });
        keeper.retry(heartbeat, hold, answer, path);
      }
      // Old keys go now and then (any request with a key does it; an index on created_at serves it).
      // A failure here concerns only them: the answer is kept.
      if (keptNow && Math.random() < 0.01) {
        await rowsOf(database.db, sql`delete from idempotency_keys where created_at <= ${at}::timestamptz - interval '24 hours'`).catch((error) =>
          logger.warn("old idempotency keys not removed", { error: describeError(error) }),
        );
      }
      return new Response(text, { status: response.status, headers: response.headers });
    };
}

/**
 * What makes two requests "the same": the content type and the body. A multipart upload (the
 * import's `curl -F file=@…`, a browser form) is compared by its parts — names, file names, types,
 * contents — since every client picks a new random boundary for each try, which would make a retry
 * of the very same upload look like another request. A body that does not parse as multipart is
 * compared as bytes.
 */
export async function requestHash(contentType: string, body: Uint8Array): Promise<string> {
  if (/^multipart\/form-data\s*;/i.test(contentType)) {
    try {
      const form = await new Response(body as unknown as BodyInit, { headers: { "content-type": contentType } }).formData();
      const hash = createHash("sha256").update("multipart/form-data\n");
      for (const [name, value] of form as unknown as Iterable<[string, string | File]>) {
        hash.update(`${JSON.stringify(name)}\n`);
        if (typeof value === "string") hash.update(`s${value.length}\n`).update(value);
        else hash.update(`f${JSON.stringify(value.name)};${JSON.stringify(value.type)};${value.size}\n`).update(new Uint8Array(await value.arrayBuffer()));
      }
      return hash.digest("hex");
    } catch {
      // not parseable: compared as bytes below
    }
  }
  return sha256(Buffer.concat([Buffer.from(`${contentType}\n`), body]));
}

/**
 * The `Location` of a replayed 201 (the kept row holds the status and body, not the headers): a
 * created client or mailing is at its collection's path plus the id the body names.
 */
function createdLocation(path: string, status: number, body: string | null): string | null {
  if (status !== 201 || body === null || path === "/api/v1/clients/import") return null;
  try {
    const id = (JSON.parse(body) as { id?: unknown }).id;
    return Number.isSafeInteger(id) ? `${path}/${id}` : null;
  } catch {
    return null;
  }
}

/** The whole body, or null once it is over `limit` bytes (by Content-Length, or while reading). */
async function readCapped(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer> | null> {
  if (Number(request.headers.get("content-length") ?? 0) > limit) return null;
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

type Answer = { status: number; contentType: string | null; body: string };

/** One request's hold of its key: the key, and the token its claim wrote (`holder`). */
type Hold = { scope: string; key: string; holder: string };

/** Keeps the answer while the hold is still this request's; false when a retry took the key over. */
async function keepAnswer(database: Database, hold: Hold, answer: Answer): Promise<boolean> {
  const rows = await rowsOf(
    database.db,
    sql`update idempotency_keys set status = ${answer.status}, content_type = ${answer.contentType}, body = ${answer.body}
        where scope = ${hold.scope} and key = ${hold.key} and holder = ${hold.holder}::uuid
        returning 1 as kept`,
  );
  return rows.length > 0;
}

/** The request's work is done and answered, but its key is a retry's now: the key keeps the retry's answer. */
function lostHold(logger: Logger, route: string): void {
  logger.warn("idempotency key taken over while its request ran", { route, reason: "its heartbeat stopped for the lease; the answer is left to the retry holding the key" });
}

type Heartbeat = { stop(): void };

/**
 * Renews the keys of running requests, and keeps trying the answers the database refused (bounded:
 * `pendingAnswers`). Timers are unref'd: nothing here keeps a stopping process alive.
 */
class AnswerKeeper {
  private readonly pending = new Map<string, Heartbeat>();
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly timing: IdempotencyTiming,
  ) {}

  heartbeat(hold: Hold): Heartbeat {
    const timer = setInterval(() => {
      // Only this request's hold, still without an answer, is renewed; a failure waits for the next beat.
      void rowsOf(
        this.database.db,
        sql`update idempotency_keys set created_at = ${this.clock.now().toISOString()}::timestamptz
            where scope = ${hold.scope} and key = ${hold.key} and holder = ${hold.holder}::uuid and status is null`,
      ).catch(() => {});
    }, this.timing.heartbeatMs);
    timer.unref?.();
    return { stop: () => clearInterval(timer) };
  }

  retry(heartbeat: Heartbeat, hold: Hold, answer: Answer, route: string): void {
    // Per hold: a request whose key was taken over must not cancel the answer of the retry that
    // holds it now (its own try then finds the hold gone and stops).
    const id = `${hold.scope}\n${hold.key}\n${hold.holder}`;
    this.pending.get(id)?.stop();
    if (this.pending.size >= pendingAnswers) {
      const [oldest, beat] = this.pending.entries().next().value!;
      beat.stop();
      this.pending.delete(oldest);
      this.logger.error("idempotency answer dropped", { route, reason: `more than ${pendingAnswers} answers waiting to be kept` });
    }
    // One try at a time: the next is timed from the end of the last, so a database answering slowly
    // (up to its statement timeout) is not sent a new copy of the same write every period.
    let attempts = 1; // the request's own
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = () => {
      if (stopped) return;
      timer = setTimeout(() => {
        attempts++;
        keepAnswer(this.database, hold, answer).then(
          (kept) => {
            stop();
            if (kept) this.logger.info("idempotency answer kept", { route, attempts });
            else lostHold(this.logger, route);
          },
          next,
        );
      }, Math.min(this.timing.heartbeatMs, 2_000));
      timer.unref?.();
    };
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      heartbeat.stop();
      if (this.pending.get(id) === entry) this.pending.delete(id);
    };
    const entry: Heartbeat = { stop };
    this.pending.set(id, entry);
    next();
  }
}

/** Frees the key after an answer that is not kept, if the hold is still this request's. */
async function release(database: Database, hold: Hold): Promise<void> {
  await rowsOf(
    database.db,
    sql`delete from idempotency_keys where scope = ${hold.scope} and key = ${hold.key} and holder = ${hold.holder}::uuid and status is null`,
  );
}
