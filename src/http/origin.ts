/**
 * Routing by path only (issue 10, item 7). Elysia 1.4 finds a request's path by looking for the
 * first `/` from the 11th character of the URL on (`u.indexOf('/', 11)`: it assumes the shortest
 * origin is `http://a.bc`, upstream elysiajs/elysia#748, open). Behind a container network the
 * origin is often shorter (`http://app/healthz`, `Host: api`), and every route answered 404.
 *
 * `routeByPath` wraps Elysia's composed handler (`app.wrap`), so it covers `app.handle` and the
 * socket alike: a URL whose path starts before that 11th character is handed on with a placeholder
 * origin long enough for the router. Nothing in the app reads the origin (only the path); the
 * caller's `Host` header is passed on unchanged. Every other request goes through untouched.
 */
import { samePeer } from "./peer";

const placeholderOrigin = "http://localhost";

/** The request as Elysia's router reads it correctly: the same request, or a copy with a longer origin. */
export function routable(request: Request): Request {
  const url = request.url;
  // "http://" or "https://" ends at index 6 or 7: the next slash starts the path.
  const pathStart = url.indexOf("/", 8);
  if (pathStart === -1 || pathStart >= 11) return request;
  return samePeer(request, new Request(placeholderOrigin + url.slice(pathStart), request));
}

/** For `app.wrap(…)`: every request reaches the router through `routable`. */
export const routeByPath = (handle: (request: Request) => unknown) => (request: Request) => handle(routable(request));
