/**
 * /auth/{provider} and /auth/{provider}/callback (SPEC §9). The state, PKCE verifier and nonce
 * travel in a short-lived HttpOnly, SameSite=Lax cookie limited to /auth/, cleared by the callback
 * whatever happens (single use); the provider refuses a replayed code. Every refusal is a page in
 * the user's language, an audit record, and nothing created.
 */
import { Elysia } from "elysia";
import { requestAddress } from "../../audit/log";
import type { AuditLog } from "../../audit/log";
import { constantTimeEqual } from "../../auth/crypto";
import type { IdentityService } from "../../auth/identities";
import { isOAuthProvider, type OAuthProvider, type OAuthProviders, type PendingAuthorization } from "../../auth/oauth";
import { FailureLimiter } from "../../auth/rate-limit";
import { idleMs, sessionCookie } from "../../auth/sessions";
import type { Clock } from "../../clock";
import { type Page, readCookies, type Web } from "../context";

export const oauthCookie = "nst_oauth";
const pendingMaxAgeSeconds = 600;
/**
 * Refusals recorded per address and minute. Anyone can call the callback, and the audit log is
 * append-only: past this an address gets a bare 429 — nothing recorded, no call to the provider.
 */
export const refusalLimit = { perAddress: 30, windowMs: 60_000 };

type Ctx = { request: Request; params: { provider: string }; query: Record<string, string | undefined> };

function encodePending(pending: PendingAuthorization): string {
  return Buffer.from(JSON.stringify(pending)).toString("base64url");
}

function decodePending(raw: string | undefined): PendingAuthorization | null {
  if (!raw || raw.length > 2000) return null;
  try {
    const value = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
    if (isOAuthProvider(value?.provider) && typeof value.state === "string" && typeof value.verifier === "string") return value;
  } catch {
    // a cookie that is not ours: no pending authorisation
  }
  return null;
}

export function oauthRoutes(web: Web, providers: OAuthProviders, identities: IdentityService, audit: AuditLog, clock: Clock) {
  const refusals = new FailureLimiter(clock, refusalLimit.perAddress, refusalLimit.windowMs);
  const addressOf = (ctx: Ctx) => requestAddress(ctx) ?? "unknown";
  /** The answer to an address that used up its refusals, or null. */
  const limited = (page: Page, ctx: Ctx) => {
    const key = addressOf(ctx);
    if (!refusals.blocked(key)) return null;
    const seconds = String(refusals.retryAfterSeconds(key));
    return web.render(page, "./error", { title: page.tr.t("oauth.refused"), message: page.tr.t("oauth.tooMany"), back: "/login", wholePage: true }, 429, { "retry-after": seconds });
  };
  const cookie = (request: Request, value: string, maxAge: number) =>
    `${oauthCookie}=${value}; HttpOnly; SameSite=Lax; Path=/auth/; Max-Age=${maxAge}${web.secure(request) ? "; Secure" : ""}`;
  const callbackUrl = (request: Request, provider: OAuthProvider) =>
    `${(web.config.publicUrl ?? new URL(request.url).origin).replace(/\/+$/, "")}/auth/${provider}/callback`;

  /** The refusal page: recorded, the state cookie cleared. */
  const refuse = async (page: Page, ctx: Ctx, provider: string, reason: string, status: number, detail: Record<string, unknown> = {}) => {
    refusals.fail(addressOf(ctx));
    await audit.record({ kind: "oauth.refused", actorUserId: null, target: provider, detail: { reason, ...detail }, ip: requestAddress(ctx) });
    return web.render(
      page,
      "./error",
      { title: page.tr.t("oauth.refused"), message: page.tr.t(`oauth.reason.${reason}`), back: "/login", wholePage: true },
      status,
      { "set-cookie": cookie(ctx.request, "", 0) },
    );
  };
  const enabled = (provider: string): provider is OAuthProvider => isOAuthProvider(provider) && providers.enabled().includes(provider);

  return new Elysia()
    .get(
      "/auth/:provider",
      web.handler<Ctx>("public", async (page, ctx) => {
        const provider = ctx.params.provider;
        if (!enabled(provider)) return web.error(page, 404, "error.notFound");
        const stop = limited(page, ctx);
        if (stop) return stop;
        const started = await providers.start(provider, callbackUrl(ctx.request, provider));
        if (!started.ok) return refuse(page, ctx, provider, started.reason, 502, { error: started.detail });
        return new Response(null, {
          status: 303,
          headers: { location: started.url.toString(), "set-cookie": cookie(ctx.request, encodePending(started.pending), pendingMaxAgeSeconds), "cache-control": "no-store" },
        });
      }),
      { detail: { hide: true } },
    )
    .get(
      "/auth/:provider/callback",
      web.handler<Ctx>("public", async (page, ctx) => {
        const provider = ctx.params.provider;
        if (!enabled(provider)) return web.error(page, 404, "error.notFound");
        const stop = limited(page, ctx);
        if (stop) return stop;
        const pending = decodePending(readCookies(ctx.request).get(oauthCookie));
        const state = ctx.query.state ?? "";
        if (!pending || pending.provider !== provider || !constantTimeEqual(state, pending.state)) return refuse(page, ctx, provider, "state", 400);
        if (ctx.query.error) return refuse(page, ctx, provider, "provider", 400, { error: ctx.query.error.slice(0, 100) });
        if (!ctx.query.code) return refuse(page, ctx, provider, "unexpected", 400, { error: "no code" });
        const result = await providers.finish(pending, ctx.query.code, callbackUrl(ctx.request, provider));
        if (!result.ok) return refuse(page, ctx, provider, result.reason, result.reason === "provider" ? 400 : 502, { error: result.detail });
        const linked = await identities.signIn(result.identity);
        const who = { subject: result.identity.subject, email: result.identity.email };
        if (!linked.ok) return refuse(page, ctx, provider, linked.reason, 403, who);
        await audit.record({ kind: "signin.oauth", actorUserId: linked.user.id, target: provider, detail: { ...who, created: linked.created }, ip: requestAddress(ctx) });
        await web.sessions.destroy(readCookies(ctx.request).get(sessionCookie));
        const session = await web.sessions.create(linked.user.id);
        const headers = new Headers({ location: "/", "cache-control": "no-store" });
        headers.append("set-cookie", web.sessionCookie(ctx.request, session.token, idleMs));
        headers.append("set-cookie", cookie(ctx.request, "", 0));
        return new Response(null, { status: 303, headers });
      }),
      { detail: { hide: true } },
    );
}
