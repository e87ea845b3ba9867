/**
 * OAuth2 sign-in through Arctic (SPEC §9): GitHub, Google and a generic OpenID Connect provider.
 *
 * All three use Arctic's generic `OAuth2Client` with `state` and PKCE (S256): Arctic's `GitHub`
 * class offers no PKCE (GitHub accepts it), and its `Google` class is the same client with fixed
 * URLs. So every provider is a table of endpoints — which is also the one seam the tests use: they
 * pass endpoints on 127.0.0.1 (`OAuthEndpointOverrides`, never read from the environment).
 *
 * Google and the OIDC provider are OpenID Connect: endpoints from the issuer's discovery document
 * (read once, cached), a `nonce`, and the ID token verified with `jose` against the provider's JWKS
 * (signature, issuer, audience, expiry, nonce). The e-mail comes from the ID token, or from the
 * userinfo endpoint when the token has none (for the same `sub`). GitHub is not OIDC: the identity
 * is its `/user` id and the primary verified address of `/user/emails`.
 *
 * Outcomes are values; a failed outside call is split by cause: `network` (the provider cannot be
 * reached), `provider` (it answered with an OAuth error), `unexpected` (it answered garbage).
 */
import {
  ArcticFetchError,
  CodeChallengeMethod,
  generateCodeVerifier,
  generateState,
  OAuth2Client,
  OAuth2RequestError,
  type OAuth2Tokens,
  UnexpectedResponseError,
} from "arctic";
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import type { OAuthConfig } from "../config";

export const oauthProviders = ["github", "google", "oidc"] as const;
export type OAuthProvider = (typeof oauthProviders)[number];

export function isOAuthProvider(value: string | undefined): value is OAuthProvider {
  return (oauthProviders as readonly string[]).includes(value ?? "");
}

/** What a provider says about who signed in. */
export type Identity = { provider: OAuthProvider; subject: string; email: string | null; emailVerified: boolean };

export type OAuthFailure = "network" | "provider" | "unexpected";

export type CallbackResult = { ok: true; identity: Identity } | { ok: false; reason: OAuthFailure; detail: string };

/** What the browser keeps between the redirect and the callback (the state cookie). */
export type PendingAuthorization = { provider: OAuthProvider; state: string; verifier: string; nonce: string | null };

/** Test seam: where GitHub's and Google's fixed endpoints really are (a fake on 127.0.0.1). */
export type OAuthEndpointOverrides = {
  github?: { authorize: string; token: string; api: string };
  /** Google's issuer, whose discovery document names the rest */
  googleIssuer?: string;
  /** how long an outside call may take (default `callTimeoutMs`) */
  timeoutMs?: number;
};

const github = {
  authorize: "https://github.com/login/oauth/authorize",
  token: "https://github.com/login/oauth/access_token",
  api: "https://api.github.com",
};
const googleIssuer = "https://accounts.google.com";
/**
 * Every outside call (discovery, token, JWKS, userinfo, GitHub's API) gives up after this: under
 * the listener's 10 s idle timeout for GET requests (http/serve.ts), so that a provider that hangs
 * gets its refusal page instead of a reset connection.
 */
export const callTimeoutMs = 8_000;

type Discovery = { issuer: string; authorization_endpoint: string; token_endpoint: string; jwks_uri: string; userinfo_endpoint?: string };

class CallError extends Error {
  constructor(
    readonly reason: OAuthFailure,
    message: string,
  ) {
    super(message);
  }
}

/** GET a JSON document; failures become CallErrors by cause. */
async function getJson(url: string, timeoutMs: number, accessToken?: string): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    const headers: Record<string, string> = { accept: "application/json", "user-agent": "notification-service" };
    if (accessToken) headers.authorization = `Bearer ${accessToken}`;
    response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new CallError("network", `${new URL(url).host}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new CallError(response.status >= 500 ? "network" : "unexpected", `${url} answered ${response.status}`);
  }
  try {
    const body = await response.json();
    if (body !== null && typeof body === "object") return body as Record<string, unknown>;
  } catch {
    // falls through: not JSON
  }
  throw new CallError("unexpected", `${url} did not answer a JSON object`);
}

function str(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** An OpenID Connect provider: discovery read once (a failed read is retried next time). */
class OidcProvider {
  private discovery: Promise<Discovery> | null = null;
  private jwks: ReturnType<typeof createRemoteJWKSet> | null = null;

  constructor(
    readonly issuer: string,
    readonly clientId: string,
    private readonly clientSecret: string,
    private readonly timeoutMs: number,
  ) {}

  endpoints(): Promise<Discovery> {
    this.discovery ??= this.discover().catch((error) => {
      this.discovery = null;
      throw error;
    });
    return this.discovery;
  }

  private async discover(): Promise<Discovery> {
    const doc = await getJson(`${this.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`, this.timeoutMs);
    const [issuer, authorize, token, jwks] = [doc.issuer, doc.authorization_endpoint, doc.token_endpoint, doc.jwks_uri].map(str);
    if (!issuer || !authorize || !token || !jwks) throw new CallError("unexpected", "the discovery document lacks an endpoint");
    // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
    if (issuer.replace(/\/+$/, "") !== this.issuer.replace(/\/+$/, "")) throw new CallError("unexpected", `discovery names issuer ${issuer}`);
    return { issuer, authorization_endpoint: authorize, token_endpoint: token, jwks_uri: jwks, userinfo_endpoint: str(doc.userinfo_endpoint) ?? undefined };
  }

  client(redirectUri: string) {
    return new OAuth2Client(this.clientId, this.clientSecret, redirectUri);
  }

  /** The identity in a verified ID token, completed from userinfo when it carries no e-mail. */
  async identity(provider: OAuthProvider, tokens: OAuth2Tokens, nonce: string | null): Promise<Identity> {
    const endpoints = await this.endpoints();
    let idToken: string;
    try {
      idToken = tokens.idToken();
    } catch {
      throw new CallError("unexpected", "the token response has no id_token");
    }
    this.jwks ??= createRemoteJWKSet(new URL(endpoints.jwks_uri), { timeoutDuration: this.timeoutMs });
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(idToken, this.jwks, {
        issuer: endpoints.issuer,
        audience: this.clientId,
        requiredClaims: ["sub", "exp", "iat"],
        clockTolerance: 60,
      }));
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      const reason: OAuthFailure = code === "ERR_JWKS_TIMEOUT" || /fetch|connect/i.test((error as Error).message) ? "network" : "unexpected";
      throw new CallError(reason, `the ID token was refused: ${code || (error as Error).message}`);
    }
    if (claims.nonce !== nonce) throw new CallError("unexpected", "the ID token's nonce does not match");
    // OIDC Core §3.1.3.7: a token for several audiences must name this client as its authorised party.
    if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== this.clientId) throw new CallError("unexpected", "the ID token's azp is not this client");
    let email = str(claims.email);
    let verified = claims.email_verified === true;
    if (!email && endpoints.userinfo_endpoint) {
      const info = await getJson(endpoints.userinfo_endpoint, this.timeoutMs, tokens.accessToken());
      if (info.sub !== claims.sub) throw new CallError("unexpected", "userinfo names another subject");
      email = str(info.email);
      verified = info.email_verified === true;
    }
    return { provider, subject: claims.sub!, email: email?.toLowerCase() ?? null, emailVerified: verified };
  }
}

/** The configured providers and the two halves of the flow. */
export class OAuthProviders {
  private readonly oidc: Partial<Record<"google" | "oidc", OidcProvider>> = {};
  private readonly githubEndpoints: typeof github;
  private readonly timeoutMs: number;

  constructor(
    private readonly config: OAuthConfig,
    overrides: OAuthEndpointOverrides = {},
  ) {
    this.githubEndpoints = overrides.github ?? github;
    this.timeoutMs = overrides.timeoutMs ?? callTimeoutMs;
    if (config.google) this.oidc.google = new OidcProvider(overrides.googleIssuer ?? googleIssuer, config.google.clientId, config.google.clientSecret, this.timeoutMs);
    if (config.oidc) this.oidc.oidc = new OidcProvider(config.oidc.issuer, config.oidc.clientId, config.oidc.clientSecret, this.timeoutMs);
  }

  /** The providers with credentials, in button order. */
  enabled(): OAuthProvider[] {
    return oauthProviders.filter((p) => this.config[p] !== null);
  }

  /** Where to send the browser, and what it must bring back (kept in a cookie). */
  async start(provider: OAuthProvider, redirectUri: string): Promise<{ ok: true; url: URL; pending: PendingAuthorization } | { ok: false; reason: OAuthFailure; detail: string }> {
    const state = generateState();
    const verifier = generateCodeVerifier();
    try {
      if (provider === "github") {
        const client = new OAuth2Client(this.config.github!.clientId, this.config.github!.clientSecret, redirectUri);
        const url = client.createAuthorizationURLWithPKCE(this.githubEndpoints.authorize, state, CodeChallengeMethod.S256, verifier, ["read:user", "user:email"]);
        return { ok: true, url, pending: { provider, state, verifier, nonce: null } };
      }
      const oidc = this.oidc[provider]!;
      const endpoints = await oidc.endpoints();
      const nonce = generateState();
      const url = oidc.client(redirectUri).createAuthorizationURLWithPKCE(endpoints.authorization_endpoint, state, CodeChallengeMethod.S256, verifier, ["openid", "email", "profile"]);
      url.searchParams.set("nonce", nonce);
      return { ok: true, url, pending: { provider, state, verifier, nonce } };
    } catch (error) {
      if (error instanceof CallError) return { ok: false, reason: error.reason, detail: error.message };
      throw error;
    }
  }

  /** Exchanges the code (with the PKCE verifier) and reads who signed in. */
  async finish(pending: PendingAuthorization, code: string, redirectUri: string): Promise<CallbackResult> {
    try {
      if (pending.provider === "github") {
        const client = new OAuth2Client(this.config.github!.clientId, this.config.github!.clientSecret, redirectUri);
        const tokens = await this.limited(client.validateAuthorizationCode(this.githubEndpoints.token, code, pending.verifier));
        return { ok: true, identity: await this.githubIdentity(tokens) };
      }
      const oidc = this.oidc[pending.provider]!;
      const endpoints = await oidc.endpoints();
      const tokens = await this.limited(oidc.client(redirectUri).validateAuthorizationCode(endpoints.token_endpoint, code, pending.verifier));
      return { ok: true, identity: await oidc.identity(pending.provider, tokens, pending.nonce) };
    } catch (error) {
      if (error instanceof CallError) return { ok: false, reason: error.reason, detail: error.message };
      if (error instanceof ArcticFetchError) return { ok: false, reason: "network", detail: error.message };
      if (error instanceof OAuth2RequestError) return { ok: false, reason: "provider", detail: error.code };
      // A 5xx from the token endpoint: the provider is down, as good as unreachable.
      if (error instanceof UnexpectedResponseError && error.status >= 500) return { ok: false, reason: "network", detail: error.message };
      // Arctic's UnexpectedResponseError / UnexpectedErrorResponseBodyError, and anything else it throws.
      return { ok: false, reason: "unexpected", detail: (error as Error).message };
    }
  }

  /** Arctic's token request takes no signal: past the limit the answer is given up (the request may still finish). */
  private limited<T>(call: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CallError("network", `no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }

  private async githubIdentity(tokens: OAuth2Tokens): Promise<Identity> {
    // GitHub answers a refused code with 200 and {"error": …}, which Arctic's generic client passes on.
    const data = tokens.data as Record<string, unknown>;
    if (typeof data.error === "string") throw new OAuth2RequestError(data.error, null, null, null);
    const accessToken = str(data.access_token);
    if (!accessToken) throw new CallError("unexpected", "the token response has no access_token");
    const user = await getJson(`${this.githubEndpoints.api}/user`, this.timeoutMs, accessToken);
    if (typeof user.id !== "number") throw new CallError("unexpected", "/user has no id");
    // A JSON array, which getJson accepts as an object.
    const emails = await getJson(`${this.githubEndpoints.api}/user/emails`, this.timeoutMs, accessToken);
    const list = Array.isArray(emails) ? (emails as { email?: unknown; primary?: unknown; verified?: unknown }[]) : [];
    const primary = list.find((e) => e.primary === true) ?? null;
    const email = primary ? str(primary.email) : null;
    return { provider: "github", subject: String(user.id), email: email?.toLowerCase() ?? null, emailVerified: primary?.verified === true };
  }
}
