/**
 * The address a request came from. The app runs behind `serveApp` (a plain Bun.serve whose fetch
 * calls `app.handle`), so Elysia's `server` in a handler's context is null and
 * `server.requestIP()` is out of reach there: the listener notes each request's peer here instead.
 * No proxy header (X-Forwarded-For) is trusted: anyone can send one.
 */
const peers = new WeakMap<Request, string>();

export function notePeer(request: Request, address: string | null | undefined): void {
  if (address) peers.set(request, address);
}

/** The peer address noted for this request (or a copy made of it), or null (app.handle in tests). */
export function peerAddress(request: Request): string | null {
  return peers.get(request) ?? null;
}

/** A copy of a request keeps its peer (the router's copy, http/origin.ts). */
export function samePeer(from: Request, to: Request): Request {
  const address = peers.get(from);
  if (address) peers.set(to, address);
  return to;
}
