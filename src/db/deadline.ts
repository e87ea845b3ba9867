/**
 * A whole-request deadline for the database (DB_REQUEST_TIMEOUT_MS; issue 14 item 2). The statement
 * timeout bounds one statement; a request that runs several, or waits for a pool connection first,
 * could take a multiple of it. The deadline runs from the request's first statement (the time a
 * client takes to send its body does not count). Under it a request either commits before it, or
 * answers 503 and commits nothing:
 *
 * - A statement is not sent once the deadline has passed (refused as 57014, which answers 503).
 * - At the deadline a statement still waiting for a pool connection is dropped from the queue, and
 *   one running is cancelled through PostgreSQL's cancel request: the server rolls it back, and the
 *   request waits for that answer. Only when no answer comes within `graceMs` (the network dropping
 *   packets) does it answer 503 without one.
 * - A transaction (`begin`) first sets `statement_timeout` and `idle_in_transaction_session_timeout`
 *   to the time left (SET LOCAL), so the server also ends it on its own when the service cannot
 *   reach it; its COMMIT is never sent after the deadline (the body's result is thrown away and the
 *   transaction rolled back instead); and a transaction still waiting for its connection at the
 *   deadline is given up at once (when it gets one later, it rolls back without running).
 * - Once a transaction of the request has committed (or a write outside one has answered), the
 *   outcome is decided: what follows (an audit
 *   record) is bounded by the statement timeout alone, so that it cannot turn a committed write
 *   into a 503.
 *
 * The deadline lives in an AsyncLocalStorage scope opened around the app's handler (innermost wrap,
 * so the Idempotency-Key bookkeeping around it is not under it) and ends when the handler has
 * answered: work the request started and left running (an import's progress stream) is not bound
 * by it, and a dispatcher the request wakes runs outside it from the start (outsideDeadline).
 *
 * What it cannot close: a COMMIT sent before the deadline whose answer is lost (the connection
 * breaks or packets are dropped) — the caller gets a 503 for a write that may be durable. That is the
 * window every client of a remote database has (RELIABILITY.md).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type postgres from "postgres";

type Scope = {
  /** DB_REQUEST_TIMEOUT_MS */
  budget: number;
  /**
   * Date.now() at which the request's database work must be over: set by its first statement, so
   * that the time a client takes to send its body (a CSV upload) does not count.
   */
  deadline: number;
  /** false once the handler has answered */
  active: boolean;
  /** true once a transaction of the request has committed */
  decided: boolean;
};

const storage = new AsyncLocalStorage<Scope>();
/** Set inside `bookkeeping`: writes there do not decide the request. */
const keeping = new AsyncLocalStorage<true>();

/** The error a statement gets when the request's deadline refused or ended it (answered 503). */
export class RequestDeadlineError extends Error {
  /** query_canceled: the code a cancelled statement has, so every 503 mapping applies as it is */
  readonly code = "57014";
  constructor(what: string) {
    super(`${what}: the request's database deadline (DB_REQUEST_TIMEOUT_MS) has passed`);
    this.name = "RequestDeadlineError";
  }
}

/**
 * Runs `handle` with a database deadline of `ms` from its first statement; the deadline ends when it
 * has answered.
 */
export function withRequestDeadline<T>(ms: number, handle: () => T | Promise<T>): Promise<T> {
  const scope: Scope = { budget: ms, deadline: Number.POSITIVE_INFINITY, active: true, decided: false };
  return storage.run(scope, async () => {
    try {
      return await handle();
    } finally {
      scope.active = false;
    }
  });
}

/** True while the caller runs under a request's deadline that still binds it. */
export function underDeadline(): boolean {
  return enforcing(storage.getStore());
}

/** Runs `work` (and what it starts) outside any request's deadline: a dispatcher a request woke. */
export function outsideDeadline<T>(work: () => T): T {
  return storage.exit(work);
}

/**
 * Runs `work`, a write the request makes on the side (a token's last_used_at, a session's renewed
 * expiry), under the deadline as usual, but without that write deciding the request: the
 * request's own write after it is still bound by the deadline.
 */
export function bookkeeping<T>(work: () => T): T {
  return keeping.run(true, work);
}

/** An app.wrap that puts every request under a deadline of `ms`. */
export function requestDeadline(ms: number) {
  return (handle: (request: Request) => unknown) => (request: Request) => withRequestDeadline(ms, () => handle(request));
}

function enforcing(scope: Scope | undefined): scope is Scope {
  return scope !== undefined && scope.active && !scope.decided;
}

/** True for the answer of a statement that may have written (INSERT, UPDATE, DELETE, MERGE, COPY …). */
function wrote(result: unknown): boolean {
  const command = (result as { command?: unknown } | null)?.command;
  return typeof command === "string" && !/^(SELECT|SHOW|FETCH|EXPLAIN|VALUES|SET)$/i.test(command);
}

/** The clock starts with the request's first statement (or transaction). */
function clockStarted(scope: Scope): Scope {
  if (scope.deadline === Number.POSITIVE_INFINITY) scope.deadline = Date.now() + scope.budget;
  return scope;
}

/** A refused statement: rejects when awaited, and takes the builder calls Drizzle makes on a query. */
function refused(what: string) {
  const fail = () => Promise.reject(new RequestDeadlineError(what));
  const query = {
    then: (ok?: (v: never) => unknown, ko?: (e: unknown) => unknown) => fail().then(ok, ko),
    catch: (ko: (e: unknown) => unknown) => fail().catch(ko),
    finally: (f: () => void) => fail().finally(f),
    values: () => query,
    raw: () => query,
    simple: () => query,
    execute: () => query,
    describe: () => query,
    cancel: () => {},
  };
  return query;
}

type PendingQuery = Promise<unknown> & { cancel(): unknown; reject(error: unknown): void };

/**
 * At the deadline, cancels `query` (dropped from the pool's queue, or a cancel request to the
 * server); if it has not settled `graceMs` later, rejects it for its caller.
 */
function watch(query: PendingQuery, scope: Scope, graceMs: number): void {
  let settled = false;
  let cancelTimer: ReturnType<typeof setTimeout> | undefined;
  let giveUpTimer: ReturnType<typeof setTimeout> | undefined;
  const done = () => {
    settled = true;
    clearTimeout(cancelTimer);
    clearTimeout(giveUpTimer);
  };
  // Promise.prototype.then, not Query's own: that one would start the query before Drizzle has
  // set it up (.values()).
  Promise.prototype.then.call(query, done, done);
  cancelTimer = setTimeout(() => {
    if (settled || !enforcing(scope)) return;
    query.cancel();
    giveUpTimer = setTimeout(() => {
      if (!settled && enforcing(scope)) query.reject(new RequestDeadlineError("no answer to the cancellation"));
    }, graceMs);
  }, Math.max(0, scope.deadline - Date.now()));
}

/**
 * Wraps a postgres.js client (or a transaction's) so that statements and transactions started under
 * a request deadline keep to it. Outside a deadline it changes nothing.
 */
export function deadlined(client: postgres.Sql, graceMs = 1_000): postgres.Sql {
  const wrap = (sql: postgres.Sql, inTransaction = false): postgres.Sql =>
    new Proxy(sql, {
      get(target, property, receiver) {
        if (property === "unsafe") {
          return (...args: unknown[]) => {
            const scope = storage.getStore();
            if (!enforcing(scope)) return (target.unsafe as (...a: unknown[]) => unknown)(...args);
            if (Date.now() >= clockStarted(scope).deadline) return refused("statement not sent");
            const query = (target.unsafe as unknown as (...a: unknown[]) => PendingQuery)(...args);
            watch(query, scope, graceMs);
            // A write outside a transaction has committed once it answers: like a transaction's
            // COMMIT, it decides the request (an audit record after it must not be cut).
            if (!inTransaction && !keeping.getStore()) Promise.prototype.then.call(query, (result) => void (wrote(result) && (scope.decided = true)), () => {});
            return query;
          };
        }
        if (property === "begin") {
          return (...args: unknown[]) => {
            const scope = storage.getStore();
            const begin = (a: unknown[]) => (Reflect.get(target, property, receiver) as (...x: unknown[]) => Promise<unknown>).apply(target, a);
            if (!enforcing(scope)) {
              const body = args.at(-1) as (tx: postgres.Sql) => unknown;
              args[args.length - 1] = (tx: postgres.Sql) => body(wrap(tx, true));
              return begin(args);
            }
            return transaction(clockStarted(scope), args, begin);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });

  async function transaction(scope: Scope, args: unknown[], begin: (a: unknown[]) => Promise<unknown>): Promise<unknown> {
    if (Date.now() >= scope.deadline) throw new RequestDeadlineError("transaction not begun");
    const body = args.at(-1) as (tx: postgres.Sql) => unknown;
    let started = false;
    let abandoned = false;
    const late = () => abandoned || (enforcing(scope) && Date.now() >= scope.deadline);
    args[args.length - 1] = async (tx: postgres.Sql) => {
      started = true;
      if (late()) throw new RequestDeadlineError("transaction given up while it waited for a connection");
      const left = String(Math.max(1, scope.deadline - Date.now()));
      // The server's own bound on the rest of the transaction, for when the service cannot reach it.
      await wrap(tx, true).unsafe(
        "select set_config('statement_timeout', $1::text, true), set_config('idle_in_transaction_session_timeout', $2::text, true)",
        [left, left],
      );
      const result = await body(wrap(tx, true));
      // Rolled back rather than committed: the caller is (about to be) told it failed.
      if (late()) throw new RequestDeadlineError("transaction not committed");
      return result;
    };
    const running = begin(args);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const givenUp = new Promise<never>((_, reject) => {
      const giveUp = () => {
        if (!enforcing(scope)) return;
        abandoned = true;
        reject(new RequestDeadlineError("transaction given up"));
      };
      // Still waiting for a connection at the deadline: nothing of it runs, answer now. Otherwise
      // its statement is being cancelled (watch): wait for that answer up to graceMs.
      timer = setTimeout(() => {
        if (!started) return giveUp();
        timer = setTimeout(giveUp, graceMs);
      }, Math.max(0, scope.deadline - Date.now()));
    });
    givenUp.catch(() => {});
    try {
      const result = await Promise.race([running, givenUp]);
      scope.decided = true;
      return result;
    } finally {
      clearTimeout(timer);
      running.catch(() => {});
    }
  }

  return wrap(client);
}
