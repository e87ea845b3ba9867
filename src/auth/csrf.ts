/**
 * Cross-site request forgery (SPEC §9). Every state-changing request to the UI passes two checks:
 *
 * 1. Origin: a browser's `Origin` (or, without it, `Sec-Fetch-Site`) must say the request comes
 *    from this site; a cross-site form post stops here.
 * 2. A synchronizer token bound to the session: the SHA-256 of the session's cookie token with a
 *    purpose prefix. Pages embed it (a hidden field in forms; htmx sends it as a header). Another
 *    site can neither read the HttpOnly cookie nor the page, so it cannot produce the value.
 */
import { constantTimeEqual, sha256Hex } from "./crypto";

export const csrfHeader = "x-csrf-token";
export const csrfField = "_csrf";

export function csrfTokenFor(sessionToken: string): Promise<string> {
  return sha256Hex(`csrf\u0000${sessionToken}`);
}

/** Origins this site is reached at: the request's own and PUBLIC_URL's. */
function allowedOrigins(request: Request, publicUrl: string | null): Set<string> {
  const origins = new Set([new URL(request.url).origin]);
  if (publicUrl) origins.add(new URL(publicUrl).origin);
  return origins;
}

/** False when the browser says the request comes from another site. */
export function sameOrigin(request: Request, publicUrl: string | null): boolean {
  const origin = request.headers.get("origin");
  if (origin !== null) return allowedOrigins(request, publicUrl).has(origin);
  const site = request.headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin" || site === "none";
  // Neither header: not a modern browser's cross-site request (curl, tests); the token still decides.
  return true;
}

export async function validCsrfToken(sessionToken: string, sent: string | null | undefined): Promise<boolean> {
  if (!sent) return false;
  return constantTimeEqual(await csrfTokenFor(sessionToken), sent);
}
