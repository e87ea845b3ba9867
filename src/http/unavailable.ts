/**
 * The database is away (stopped, unreachable, out of connection slots) or gave up on a statement
 * (DB_STATEMENT_TIMEOUT_MS): every request that needed it is answered 503 with Retry-After, never a
 * 500 and never a hang (issue 14 item 2). API callers get an RFC 9457 document; a browser asking
 * for a page gets a 503 page in the UI's style.
 *
 * Whether a write committed: PostgreSQL rolls back a statement it cancelled and a transaction whose
 * connection broke, so a 503 means "not written" — except for a COMMIT the server completed just as
 * the connection broke, whose acknowledgement never arrived (inherent to any client of a database;
 * RELIABILITY.md). Retrying a create then answers 409 for a duplicate phone number.
 */
import { databaseUnavailable, sqlState } from "../db/errors";

export { databaseUnavailable };
import type { Logger } from "../ops/logger";
import { Problem, problemResponse } from "../problems";
import { eta, htmlResponse } from "../web/render";
import { isLocale, negotiate, translator } from "../web/i18n";

/** Seconds a client should wait before trying again. */
export const retryAfterSeconds = 2;

/** A page, not an API call: the UI's paths are outside /api and browsers ask for HTML. */
function wantsPage(request: Request): boolean {
  const path = new URL(request.url).pathname;
  if (path.startsWith("/api/") || path.startsWith("/docs")) return false;
  return (request.headers.get("accept") ?? "").includes("text/html") || request.headers.get("hx-request") === "true";
}

function langOf(request: Request): string | null {
  const cookie = request.headers.get("cookie") ?? "";
  return /(?:^|;\s*)nst_lang=([a-z]+)/.exec(cookie)?.[1] ?? null;
}

export function unavailableResponse(error: unknown, request: Request, logger: Logger): Response {
  const url = new URL(request.url);
  // No path (it can carry a token): the caller's logger binds the route template.
  logger.warn("database unavailable; answered 503", { method: request.method, code: sqlState(error) ?? (error as { code?: unknown })?.code ?? (error as { cause?: { code?: unknown } })?.cause?.code ?? null });
  const headers = { "retry-after": String(retryAfterSeconds) };
  if (!wantsPage(request)) {
    return problemResponse(new Problem(503, `the database is unavailable right now; try again in ${retryAfterSeconds} s`), headers);
  }
  const chosen = langOf(request);
  const tr = translator(isLocale(chosen) ? chosen : negotiate(request.headers.get("accept-language")));
  const title = tr.t("error.unavailable");
  const htmx = request.headers.get("hx-request") === "true";
  const body = eta.render("./error", { title, message: title, fragment: htmx, tr, t: tr.t, user: null, csrf: null, path: url.pathname, locale: tr.locale, registrationOpen: false, sandbox: false });
  return htmlResponse(body, 503, headers);
}
