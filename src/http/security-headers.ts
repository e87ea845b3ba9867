/**
 * Security headers on every response (issue 14 item 6), not only on the UI's pages: API answers,
 * problem documents (404, 405, 401, 422, 500), health, metrics, the OpenAPI page and its JSON,
 * webhooks, static files, redirects. It wraps Elysia's composed handler (`app.wrap`) like the
 * request log does, so answers given before routing or by inner wraps (a 413, an Idempotency-Key
 * replay) get them too. Headers a route set itself are kept (the pages' CSP, a static file's
 * public cache).
 *
 * - `Content-Security-Policy`: for anything that is not a page, `default-src 'none'` with
 *   `frame-ancestors 'none'` (a JSON answer opened in a tab runs nothing and cannot be framed).
 *   The OpenAPI reference at /docs (rendered by the plugin with one inline start-up script, and no
 *   policy of its own) gets the page policy with that script's SHA-256 hash. Only /docs: any other
 *   HTML answer without a policy gets the page policy as it is, so an inline script there never
 *   runs, whoever wrote it into the page.
 * - `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`, `X-Frame-Options: DENY`.
 * - `Cache-Control: no-store` unless the route chose a cache itself: answers carry private data (or
 *   a secret: a new token); only public files under /static/ and /docs/assets/ are cacheable.
 */
import { contentSecurityPolicy } from "../web/security";

export const nonPagePolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const always: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

/** The page policy, allowing the inline scripts of this HTML by hash (and inline styles, which the OpenAPI UI sets). */
async function policyForHtml(html: string): Promise<string> {
  const hashes: string[] = [];
  for (const match of html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(match[1]!));
    hashes.push(`'sha256-${Buffer.from(digest).toString("base64")}'`);
  }
  return contentSecurityPolicy
    .replace("script-src 'self'", ["script-src 'self'", ...hashes].join(" "))
    .replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");
}

/** The paths whose inline scripts are allowed by hash: the OpenAPI reference page, nothing else. */
const docsPage = /^\/docs\/?$/;

async function withHeaders(response: Response, path: string): Promise<Response> {
  let out = response;
  if (!out.headers.has("content-security-policy") && /^text\/html/i.test(out.headers.get("content-type") ?? "")) {
    if (docsPage.test(path)) {
      const html = await out.text();
      out = new Response(html, out);
      out.headers.set("content-security-policy", await policyForHtml(html));
    } else {
      try {
        out.headers.set("content-security-policy", contentSecurityPolicy);
      } catch {
        return withHeaders(new Response(out.body, out), path);
      }
    }
  }
  try {
    if (!out.headers.has("content-security-policy")) out.headers.set("content-security-policy", nonPagePolicy);
    for (const [name, value] of Object.entries(always)) if (!out.headers.has(name)) out.headers.set(name, value);
  } catch {
    // immutable headers (a fetched response): copy it and try again
    return withHeaders(new Response(out.body, out), path);
  }
  return out;
}

/** For `app.wrap(…)`: every answer leaves with the headers above. */
export const securityHeaders =
  (handle: (request: Request) => Response | Promise<Response>) =>
  async (request: Request): Promise<Response> =>
    withHeaders(await handle(request), new URL(request.url).pathname);
