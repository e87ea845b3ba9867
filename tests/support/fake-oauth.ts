/**
 * A fake OAuth2 / OpenID Connect provider on 127.0.0.1 for the tests (SPEC §9): discovery,
 * authorize (which signs the configured user in at once), token (client authentication, PKCE S256
 * checked, codes single use), userinfo, and a JWKS whose RS256 key signs the ID tokens (jose).
 * Under /github/ it speaks GitHub's dialect instead: its authorize and access_token URLs and the
 * API's /user and /user/emails.
 *
 * `user` is who signs in next; `fault` makes the next answers go wrong in one chosen way.
 */
import { createHash, randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export type FakeUser = { sub: string; email: string | null; email_verified: boolean; github_id?: number };

export type Fault =
  | null
  | "deny" // authorize redirects back with error=access_denied
  | "token-garbage" // the token endpoint answers 200 with HTML
  | "token-503" // the token endpoint is down
  | "token-hang" // the token endpoint never answers
  | "expired" // the ID token expired an hour ago
  | "wrong-nonce"
  | "wrong-audience"
  | "extra-audience" // audiences [client, another] and no azp
  | "wrong-issuer"
  | "bad-signature" // signed with a key the JWKS does not hold
  | "no-email-claim"; // the ID token has no e-mail: the app must ask userinfo

type Grant = { clientId: string; redirectUri: string; challenge: string; nonce: string | null; user: FakeUser; used: boolean };

export type FakeProvider = {
  /** the issuer URL (also the base of every endpoint) */
  url: string;
  clients: Map<string, string>;
  user: FakeUser;
  fault: Fault;
  /** token requests seen, for PKCE assertions */
  tokenRequests: URLSearchParams[];
  githubEndpoints(): { authorize: string; token: string; api: string };
  stop(): void;
};

const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url");

export async function startFakeProvider(clients: Record<string, string> = { "test-client": "test-secret" }): Promise<FakeProvider> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const other = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const grants = new Map<string, Grant>();
  const tokens = new Map<string, FakeUser>();

  const state: FakeProvider = {
    url: "",
    clients: new Map(Object.entries(clients)),
    user: { sub: "user-1", email: "boss@example.com", email_verified: true, github_id: 4242 },
    fault: null,
    tokenRequests: [],
    githubEndpoints: () => ({ authorize: `${state.url}/github/login/oauth/authorize`, token: `${state.url}/github/login/oauth/access_token`, api: `${state.url}/github/api` }),
    stop: () => server.stop(true),
  };

  const json = (body: unknown, status = 200) => Response.json(body, { status });

  const authorize = (url: URL, oidc: boolean) => {
    const q = url.searchParams;
    const redirectUri = q.get("redirect_uri") ?? "";
    if (!state.clients.has(q.get("client_id") ?? "") || !redirectUri) return new Response("unknown client", { status: 400 });
    if (q.get("response_type") !== "code" || q.get("code_challenge_method") !== "S256" || !q.get("code_challenge") || !q.get("state")) {
      return new Response("state and PKCE S256 are required", { status: 400 });
    }
    if (oidc && !q.get("nonce")) return new Response("nonce is required", { status: 400 });
    const back = new URL(redirectUri);
    back.searchParams.set("state", q.get("state")!);
    if (state.fault === "deny") {
      back.searchParams.set("error", "access_denied");
      return Response.redirect(back.toString(), 302);
    }
    const code = randomUUID();
    grants.set(code, { clientId: q.get("client_id")!, redirectUri, challenge: q.get("code_challenge")!, nonce: q.get("nonce"), user: { ...state.user }, used: false });
    back.searchParams.set("code", code);
    return Response.redirect(back.toString(), 302);
  };

  /** Client authentication, PKCE and single use; the grant, or an OAuth error response. */
  const redeem = async (request: Request): Promise<Grant | Response> => {
    const form = new URLSearchParams(await request.text());
    state.tokenRequests.push(form);
    const basic = (request.headers.get("authorization") ?? "").replace(/^Basic /, "");
    const [id, secret] = Buffer.from(basic, "base64").toString().split(":");
    if (!id || state.clients.get(id) !== secret) return json({ error: "invalid_client" }, 401);
    const grant = grants.get(form.get("code") ?? "");
    if (!grant || grant.used || grant.clientId !== id || grant.redirectUri !== form.get("redirect_uri")) return json({ error: "invalid_grant" }, 400);
    grant.used = true;
    if (s256(form.get("code_verifier") ?? "") !== grant.challenge) return json({ error: "invalid_grant", error_description: "PKCE verification failed" }, 400);
    return grant;
  };

  const idToken = async (grant: Grant) => {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { nonce: state.fault === "wrong-nonce" ? "other" : grant.nonce };
    if (state.fault !== "no-email-claim") Object.assign(claims, { email: grant.user.email, email_verified: grant.user.email_verified });
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setSubject(grant.user.sub)
      .setIssuer(state.fault === "wrong-issuer" ? "https://evil.example" : state.url)
      .setAudience(state.fault === "wrong-audience" ? "someone-else" : state.fault === "extra-audience" ? [grant.clientId, "someone-else"] : grant.clientId)
      .setIssuedAt(state.fault === "expired" ? now - 7200 : now)
      .setExpirationTime(state.fault === "expired" ? now - 3600 : now + 300)
      .sign(state.fault === "bad-signature" ? other.privateKey : privateKey);
  };

  const bearer = (request: Request) => tokens.get((request.headers.get("authorization") ?? "").replace(/^Bearer /, ""));

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      switch (url.pathname) {
        case "/.well-known/openid-configuration":
          return json({
            issuer: state.url,
            authorization_endpoint: `${state.url}/authorize`,
            token_endpoint: `${state.url}/token`,
            userinfo_endpoint: `${state.url}/userinfo`,
            jwks_uri: `${state.url}/jwks`,
            code_challenge_methods_supported: ["S256"],
          });
        case "/jwks":
          return json({ keys: [jwk] });
        case "/authorize":
          return authorize(url, true);
        case "/github/login/oauth/authorize":
          return authorize(url, false);
        case "/token":
        case "/github/login/oauth/access_token": {
          if (state.fault === "token-garbage") return new Response("<html>oops</html>", { headers: { "content-type": "text/html" } });
          if (state.fault === "token-503") return new Response("down", { status: 503 });
          if (state.fault === "token-hang") return new Promise<Response>(() => {});
          const grant = await redeem(request);
          if (grant instanceof Response) {
            // GitHub answers a refused code with 200 and an error body.
            if (url.pathname.startsWith("/github/")) return json(await grant.json(), 200);
            return grant;
          }
          const access = randomUUID();
          tokens.set(access, grant.user);
          if (url.pathname.startsWith("/github/")) return json({ access_token: access, token_type: "bearer", scope: "read:user,user:email" });
          return json({ access_token: access, token_type: "Bearer", expires_in: 300, id_token: await idToken(grant) });
        }
        case "/userinfo": {
          const user = bearer(request);
          if (!user) return json({ error: "invalid_token" }, 401);
          return json({ sub: user.sub, email: user.email, email_verified: user.email_verified });
        }
        case "/github/api/user": {
          const user = bearer(request);
          if (!user) return json({ message: "Bad credentials" }, 401);
          return json({ id: user.github_id ?? 1, login: user.sub, email: null });
        }
        case "/github/api/user/emails": {
          const user = bearer(request);
          if (!user) return json({ message: "Bad credentials" }, 401);
          return json(user.email ? [{ email: user.email, primary: true, verified: user.email_verified }, { email: "other@example.net", primary: false, verified: true }] : []);
        }
      }
      return new Response("not found", { status: 404 });
    },
  });
  state.url = `http://127.0.0.1:${server.port}`;
  return state;
}
