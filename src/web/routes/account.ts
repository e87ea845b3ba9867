/** Sign-in, registration, sign-out and the language switch (SPEC §9). */
import { Elysia } from "elysia";
import type { Clock } from "../../clock";
import { FailureLimiter } from "../../auth/rate-limit";
import { idleMs } from "../../auth/sessions";
import { normalizeEmail } from "../../auth/users";
import { formValues } from "../forms";
import { isLocale, langCookie } from "../i18n";
import { redirect } from "../render";
import { type Page, readCookies, type Web } from "../context";
import { sessionCookie } from "../../auth/sessions";
import { type AuditLog, requestAddress } from "../../audit/log";
import type { OAuthProviders } from "../../auth/oauth";

/** Five failed sign-ins for one e-mail within a minute, or thirty from one address. */
export const loginLimits = { perEmail: 5, perAddress: 30, windowMs: 60_000 };
/**
 * Registration attempts from one address (any outcome: each one hashes a password, and a refusal
 * says whether an e-mail is taken): thirty within ten minutes, then 429 until the oldest leaves.
 */
export const registerLimits = { perAddress: 30, windowMs: 10 * 60_000 };

type Ctx = { request: Request; body: unknown; server: { requestIP(r: Request): { address: string } | null } | null };

/**
 * Only paths of this site: `/x`, never `//host` or a full URL; no control characters either (browsers
 * drop tabs and newlines from a Location, so `/<tab>/host` would become `//host`).
 */
function safeBack(raw: string): string {
  return /^\/(?![/\\])[^\u0000-\u001f\u007f]*$/.test(raw) ? raw : "/";
}

export function accountRoutes(web: Web, clock: Clock, audit: AuditLog, oauth: OAuthProviders) {
  const byEmail = new FailureLimiter(clock, loginLimits.perEmail, loginLimits.windowMs);
  const byAddress = new FailureLimiter(clock, loginLimits.perAddress, loginLimits.windowMs);
  const registrations = new FailureLimiter(clock, registerLimits.perAddress, registerLimits.windowMs);

  const loginPage = (page: Page, data: Record<string, unknown> = {}, status = 200, headers: Record<string, string> = {}) =>
    web.render(page, "./login", { title: page.tr.t("login.title"), email: "", error: null, wholePage: true, providers: oauth.enabled(), ...data }, status, headers);

  const registerPage = async (page: Page, data: Record<string, unknown> = {}, status = 200, headers: Record<string, string> = {}) => {
    const first = (await web.users.count()) === 0;
    return web.render(
      page,
      "./register",
      { title: page.tr.t(first ? "register.firstTitle" : "register.title"), first, email: "", errors: {}, wholePage: true, ...data },
      status,
      headers,
    );
  };

  return new Elysia()
    .get("/login", web.handler("public", (page) => (page.user ? redirect("/", false) : loginPage(page))), { detail: { hide: true } })
    .post(
      "/login",
      web.handler<Ctx>("public", async (page, ctx) => {
        const { email, password } = formValues(ctx.body, ["email", "password"] as const);
        const emailKey = normalizeEmail(email).slice(0, 254);
        // Elysia's ctx.server is null behind serveApp: this was "unknown" for everyone, one shared budget.
        const address = requestAddress(ctx) ?? "unknown";
        for (const [limiter, key] of [[byEmail, emailKey], [byAddress, address]] as const) {
          if (limiter.blocked(key)) {
            const seconds = limiter.retryAfterSeconds(key);
            return loginPage(page, { email, error: page.tr.t("login.tooMany", { seconds }) }, 429, { "retry-after": String(seconds) });
          }
        }
        // Counted before the (slow) password check, in the same turn as the test above: parallel
        // guesses cannot all pass it. A success takes the attempt back.
        byEmail.fail(emailKey);
        byAddress.fail(address);
        const user = await web.users.verify(email, password);
        if (!user) {
          await audit.record({ kind: "signin.failed", actorUserId: null, target: emailKey, ip: requestAddress(ctx) });
          return loginPage(page, { email, error: page.tr.t("login.failed") }, 401);
        }
        byEmail.reset(emailKey);
        byAddress.forgive(address);
        await audit.record({ kind: "signin.password", actorUserId: user.id, target: user.email, ip: requestAddress(ctx) });
        // A fresh session on every sign-in; the one this browser had (if any) ends.
        await web.sessions.destroy(readCookies(ctx.request).get(sessionCookie));
        const session = await web.sessions.create(user.id);
        return redirect("/", false, { "set-cookie": web.sessionCookie(ctx.request, session.token, idleMs) });
      }),
      { detail: { hide: true } },
    )
    .get("/register", web.handler("public", (page) => registerPage(page)), { detail: { hide: true } })
    .post(
      "/register",
      web.handler<Ctx>("public", async (page, ctx) => {
        if (web.config.registration === "closed") return registerPage(page, {}, 403);
        const { email, password } = formValues(ctx.body, ["email", "password"] as const);
        const address = requestAddress(ctx) ?? "unknown";
        if (registrations.blocked(address)) {
          const seconds = registrations.retryAfterSeconds(address);
          return registerPage(page, { email, errors: { email: page.tr.t("register.tooMany", { seconds }) } }, 429, { "retry-after": String(seconds) });
        }
        // Counted before the (slow) password hashing, in the same turn as the test above.
        registrations.fail(address);
        const result = await web.users.register(email, password);
        if (!result.ok) {
          const errors = Object.fromEntries(result.errors.map((e) => [e.field, page.tr.t(e.message)]));
          return registerPage(page, { email, errors }, 422);
        }
        await web.sessions.destroy(readCookies(ctx.request).get(sessionCookie));
        const session = await web.sessions.create(result.user.id);
        return redirect("/", false, { "set-cookie": web.sessionCookie(ctx.request, session.token, idleMs) });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/logout",
      web.handler<Ctx>("public", async (page, ctx) => {
        await web.sessions.destroy(page.sessionToken ?? undefined);
        return redirect("/login", false, { "set-cookie": web.clearedSessionCookie(ctx.request) });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/lang",
      web.handler<Ctx>("public", (page, ctx) => {
        const { lang, back } = formValues(ctx.body, ["lang", "back"] as const);
        if (!isLocale(lang)) return web.error(page, 422, "error.notFound");
        const secure = web.secure(ctx.request) ? "; Secure" : "";
        return redirect(safeBack(back), false, {
          "set-cookie": `${langCookie}=${lang}; SameSite=Lax; Path=/; Max-Age=31536000${secure}`,
        });
      }),
      { detail: { hide: true } },
    );
}

