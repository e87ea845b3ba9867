/**
 * One JSON log line and one metrics observation per HTTP request (issue 13, item 2), and the
 * request id echoed on every response, errors and 404s included.
 *
 * It wraps Elysia's composed handler (`app.wrap`, which covers `app.handle` and the socket alike),
 * so it sees the response that really leaves (status of a raw Response, of an error document, of
 * an early 413) — Elysia's afterResponse hook reports 200 for some of those. The matched route
 * template is recorded by the app's hooks into the request's scope (an AsyncLocalStorage), so this
 * wrap is the outermost: it also sees the answers that inner wraps give themselves (a replayed
 * Idempotency-Key, a 422 for a bad key). A request no route matched is `unmatched`.
 *
 * Logged: method, route template, status, duration, request id. Never the path or query (they can
 * carry ids or a token in a link), never a header value other than the request id.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "./logger";
import type { Metrics } from "./metrics";

/** The label of requests no route matched (bounded label values: never the raw path). */
export const unmatched = "unmatched";

/** A caller's X-Request-Id is kept when it is a short plain token; anything else is replaced. */
const saneId = /^[A-Za-z0-9._-]{1,128}$/;

export function requestIdFor(header: string | null): string {
  return header && saneId.test(header) ? header : crypto.randomUUID();
}

/** Methods kept as they are in labels and logs; any other (a client can send any token) is `other`. */
const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Probes polled every few seconds by load balancers and Prometheus: logged at debug level only. */
const quiet = new Set(["/healthz", "/readyz", "/metrics"]);

/** What the wrap learns about the request it is running, from inside the app. */
type RequestScope = { id: string; route: string | null };

/**
 * The request being handled, carried through the app by an AsyncLocalStorage rather than keyed by
 * the Request object: wraps inside this one may hand the app another Request (routing by path,
 * Idempotency-Key), and answers they give themselves must be logged and counted too.
 */
export type Observed = {
  /** the matched route template, recorded by the app's hooks */
  setRoute(route: string): void;
  /** the request id of the request being handled (for handlers that log) */
  id(): string | undefined;
  scope: AsyncLocalStorage<RequestScope>;
};

export function observed(): Observed {
  const scope = new AsyncLocalStorage<RequestScope>();
  return {
    scope,
    setRoute(route) {
      const current = scope.getStore();
      if (current) current.route = route;
    },
    id: () => scope.getStore()?.id,
  };
}

export function observeRequests(
  state: Observed,
  logger: Logger,
  metrics: Metrics,
): (handle: (request: Request) => Response | Promise<Response>) => (request: Request) => Promise<Response> {
  return (handle) => async (request) => {
    const started = performance.now();
    const id = requestIdFor(request.headers.get("x-request-id"));
    const scope: RequestScope = { id, route: null };
    let response = await state.scope.run(scope, () => handle(request));
    try {
      response.headers.set("x-request-id", id);
    } catch {
      // immutable headers (a fetched response): copy it
      response = new Response(response.body, response);
      response.headers.set("x-request-id", id);
    }
    const seconds = (performance.now() - started) / 1000;
    // A group's root route is registered as `/api/v1/mailings/`: label it as callers write it.
    const route = (scope.route ?? unmatched).replace(/(.)\/$/, "$1");
    const method = methods.has(request.method) ? request.method : "other";
    metrics.request(method, route, response.status, seconds);
    const fields = {
      method,
      route,
      status: response.status,
      duration_ms: Math.round(seconds * 10_000) / 10,
      request_id: id,
    };
    if (quiet.has(route)) logger.debug("request", fields);
    else logger.info("request", fields);
    return response;
  };
}
