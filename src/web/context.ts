/**
 * What every UI request needs before its handler runs: the language, the signed-in user, the CSRF
 * token, and the checks that decide whether the handler runs at all (sign-in, role, same origin,
 * CSRF). Page handlers receive a `Page` and return a Response.
 */
import type { Actor } from "../auth/actor";
import { csrfField, csrfHeader, csrfTokenFor, sameOrigin, validCsrfToken } from "../auth/csrf";
import { idleMs, type SessionService, type SessionUser, sessionCookie } from "../auth/sessions";
import type { UserService } from "../auth/users";
import type { Config } from "../config";
import { isLocale, langCookie, type Locale, negotiate, type Translator, translator } from "./i18n";
import { eta, htmlResponse, redirect } from "./render";

export type WebConfig = Pick<Config, "registration" | "publicUrl"> & {
  /** the sandbox provider sends in this process: the outbox page is offered */
  sandbox?: boolean;
};

export type Page = {
  request: Request;
  path: string;
  /** an htmx request: answer with the fragment, not the whole page */
  htmx: boolean;
  locale: Locale;
  tr: Translator;
  user: SessionUser | null;
  actor: Actor | null;
  /** the session token from the cookie, when it belongs to a live session */
  sessionToken: string | null;
  csrf: string | null;
  /** headers every response of this request carries (a renewed session cookie) */
  headers: Record<string, string>;
};

export type Access = "public" | "user" | "admin";

export function readCookies(request: Request): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (cookies.has(name)) continue;
    // A value that is not valid percent-encoding is not one of ours: ignored, not a 500.
    try {
      cookies.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // skipped
    }
  }
  return cookies;
}

const writeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Statuses of a page that shows its form again with the reason (see Web.render). */
const shownAgain = new Set([401, 422, 429, 502, 503]);

export class Web {
  constructor(
    readonly users: UserService,
    readonly sessions: SessionService,
    readonly config: WebConfig,
  ) {}

  /** `Secure` when users reach the site over HTTPS (PUBLIC_URL) or this request came over it. */
  secure(request: Request): boolean {
    return new URL(request.url).protocol === "https:" || (this.config.publicUrl?.startsWith("https:") ?? false);
  }

  sessionCookie(request: Request, token: string, maxAgeMs: number): string {
    const secure = this.secure(request) ? "; Secure" : "";
    return `${sessionCookie}=${token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}${secure}`;
  }

  clearedSessionCookie(request: Request): string {
    return this.sessionCookie(request, "", 0);
  }

  async page(request: Request): Promise<Page> {
    const url = new URL(request.url);
    const cookies = readCookies(request);
    const chosen = cookies.get(langCookie);
    const locale = isLocale(chosen) ? chosen : negotiate(request.headers.get("accept-language"));
    const token = cookies.get(sessionCookie) || null;
    const user = token ? await this.sessions.resolve(token) : null;
    const headers: Record<string, string> = {};
    if (user?.renewed) headers["set-cookie"] = this.sessionCookie(request, token!, idleMs);
    return {
      request,
      path: url.pathname,
      htmx: request.headers.get("hx-request") === "true",
      locale,
      tr: translator(locale),
      user,
      actor: user ? { kind: "session", role: user.role, userId: user.userId, tokenId: null } : null,
      sessionToken: user ? token : null,
      csrf: user ? await csrfTokenFor(token!) : null,
      headers,
    };
  }

  /** Renders a page template (whole, or its fragment for htmx) with the layout's data. */
  render(page: Page, template: string, data: Record<string, unknown> = {}, status = 200, headers: Record<string, string> = {}) {
    const body = eta.render(template, {
      ...data,
      fragment: page.htmx && !data.wholePage,
      tr: page.tr,
      t: page.tr.t,
      user: page.user,
      csrf: page.csrf,
      path: page.path,
      locale: page.locale,
      registrationOpen: this.config.registration === "open",
      sandbox: this.config.sandbox ?? false,
    });
    // A form shown again with what went wrong (422 field errors, 401 failed sign-in, 429 too many,
    // a test send's gateway failure) is answered 200 to a browser — htmx, or a page load
    // (Sec-Fetch-Dest: document) — because Chromium logs every 4xx/5xx load as a console error,
    // and the page itself says what is wrong. The status stays in X-Status; any other client
    // (curl, scripts, the tests' app.handle) gets it as the status itself.
    const browser = page.htmx || page.request.headers.get("sec-fetch-dest") === "document";
    if (browser && shownAgain.has(status)) return htmlResponse(body, 200, { ...page.headers, "x-status": String(status), ...headers });
    return htmlResponse(body, status, { ...page.headers, ...headers });
  }

  error(page: Page, status: number, messageKey: string): Response {
    return this.render(page, "./error", { title: page.tr.t(messageKey), message: page.tr.t(messageKey), wholePage: !page.htmx }, status);
  }

  /**
   * Runs the checks in order: same origin for writes, sign-in, CSRF token for writes with a
   * session, role. Returns the response that stops the request, or null to go on.
   */
  async check(page: Page, access: Access, body: unknown): Promise<Response | null> {
    const write = writeMethods.has(page.request.method);
    if (write && !sameOrigin(page.request, this.config.publicUrl)) return this.error(page, 403, "error.csrf");
    if (access !== "public" && !page.user) {
      const to = (await this.users.count()) === 0 ? "/register" : "/login";
      return redirect(to, page.htmx, page.headers);
    }
    if (write && page.sessionToken) {
      const sent = page.request.headers.get(csrfHeader) ?? fieldOf(body, csrfField);
      if (!(await validCsrfToken(page.sessionToken, sent))) return this.error(page, 403, "error.csrf");
    }
    if (access === "admin" && page.user?.role !== "admin") return this.error(page, 403, "error.forbidden");
    return null;
  }

  /** An Elysia handler: builds the Page, runs the checks, then the page's own code. */
  handler<C extends { request: Request; body?: unknown }>(access: Access, run: (page: Page, ctx: C) => Promise<Response> | Response) {
    return async (ctx: C): Promise<Response> => {
      const page = await this.page(ctx.request);
      const stop = await this.check(page, access, ctx.body);
      if (stop) return stop;
      // PostgreSQL cannot store or compare a NUL in text: a 422 naming the field, never a 500.
      const nul = fieldWithNul(ctx.body, new URL(page.request.url).searchParams);
      if (nul !== null) {
        const message = page.tr.t("error.nul", { field: nul });
        return this.render(page, "./error", { title: message, message, wholePage: !page.htmx }, 422);
      }
      return run(page, ctx);
    };
  }
}

/** The name of the first form field or query parameter holding U+0000, or null. */
function fieldWithNul(body: unknown, query: URLSearchParams): string | null {
  for (const [name, value] of query) if (value.includes("\u0000") || name.includes("\u0000")) return name.replaceAll("\u0000", "");
  if (body === null || typeof body !== "object") return null;
  for (const [name, value] of Object.entries(body)) {
    const values = Array.isArray(value) ? value : [value];
    if (name.includes("\u0000") || values.some((v) => typeof v === "string" && v.includes("\u0000"))) return name.replaceAll("\u0000", "");
  }
  return null;
}

/** A string field of a parsed form body. */
export function fieldOf(body: unknown, name: string): string | null {
  if (body === null || typeof body !== "object") return null;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === "string" ? value : null;
}
