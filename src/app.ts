/**
 * Builds the HTTP application without listening (SPEC §1: edge-ready), so that tests call
 * `app.handle(new Request(…))` and main.ts decides how to serve it.
 */
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import { apiGuard } from "./auth/guard";
import { sha256Hex } from "./auth/crypto";
import { tokenRoutes } from "./auth/routes";
import { TokenService } from "./auth/tokens";
import { IdentityService } from "./auth/identities";
import { type OAuthEndpointOverrides, OAuthProviders } from "./auth/oauth";
import { AuditLog } from "./audit/log";
import { auditRoutes } from "./audit/routes";
import { compatRoutes } from "./http/compat";
import { renderError } from "./http/errors";
import { allowedMethods } from "./http/methods";
import { routeByPath } from "./http/origin";
import { requestDeadline } from "./db/deadline";
import { idempotency, type IdempotencyTiming } from "./http/idempotency";
import { securityHeaders } from "./http/security-headers";
import { jsonBodyLimit, parseJsonBody } from "./http/body";
import type { Clock } from "./clock";
import { clientRoutes } from "./clients/routes";
import { ClientImporter } from "./clients/import";
import { ImportChecker } from "./clients/import-check";
import { ClientService } from "./clients/service";
import type { Config } from "./config";
import type { Database } from "./db/client";
import type { Signals } from "./dispatch/signals";
import { mailingRoutes } from "./mailings/routes";
import { OpenMailingsCache } from "./mailings/open-cache";
import { MailingService } from "./mailings/service";
import { MailingPreview } from "./mailings/preview";
import { healthRoutes } from "./ops/health";
import type { Logger } from "./ops/logger";
import { Metrics } from "./ops/metrics";
import { metricsRoutes } from "./ops/metrics-route";
import { observed, observeRequests, unmatched } from "./ops/observe";
import { Problem, problemResponse } from "./problems";
import { StatsService } from "./stats/service";
import { statsRoutes } from "./stats/routes";
import { assetRoutes } from "./web/assets";
import { SessionService } from "./auth/sessions";
import { UserAdmin, UserService } from "./auth/users";
import { Web } from "./web/context";
import { webRoutes } from "./web";
import { webhookRoutes } from "./webhooks/routes";
import { blocklistRoutes } from "./blocklist/routes";
import { BlocklistService } from "./blocklist/service";
import type { Outbox } from "./web/routes/outbox";
import type { Gateway } from "./gateway/gateway";

export type AppDeps = {
  config: Pick<Config, "adminApiKey"> & Partial<Pick<Config, "registration" | "publicUrl" | "metricsToken" | "oauth" | "adminEmails" | "provider" | "webhookToken" | "dbRequestTimeoutMs">>;
  /** tests only: GitHub's and Google's fixed endpoints moved to a local fake (auth/oauth.ts) */
  oauthEndpoints?: OAuthEndpointOverrides;
  database: Database;
  clock: Clock;
  logger: Logger;
  signals: Signals;
  /** the sandbox provider's memory of what it "sent", when it is the gateway in this process (the outbox page) */
  outbox?: Outbox | null;
  /** the configured gateway, for the UI's test send of a text to one phone (none: the form says so) */
  gateway?: Gateway | null;
  /** how long the open mailings stay cached at most (default 1 s; tests set it long to show nothing relies on it) */
  openMailingsTtlMs?: number;
  /** the process's metrics (main.ts shares them with the dispatcher); default: the app's own */
  metrics?: Metrics;
  /** true once the process is shutting down: /readyz answers 503 */
  stopping?: () => boolean;
  /** tests only: the Idempotency-Key's lease and heartbeat (default 60 s and 15 s, http/idempotency.ts) */
  idempotencyTiming?: IdempotencyTiming;
};

/** The services behind the routes, shared by the API and (later) the web UI. */
export function createServices(deps: AppDeps) {
  // Every mailing write signals after it commits: that is also when the cached open mailings go stale.
  const openMailings = new OpenMailingsCache(deps.database, deps.openMailingsTtlMs);
  const signals: Signals = {
    wake() {
      openMailings.invalidate();
      deps.signals.wake();
    },
    mailingChanged(id) {
      openMailings.invalidate();
      deps.signals.mailingChanged(id);
    },
    clientChanged() {
      deps.signals.clientChanged();
    },
  };
  const audit = new AuditLog(deps.database, deps.clock, deps.logger);
  return {
    tokens: new TokenService(deps.database, deps.clock, deps.logger),
    clients: new ClientService(deps.database, deps.clock, openMailings, signals),
    importer: new ClientImporter(deps.database, deps.clock),
    mailings: new MailingService(deps.database, deps.clock, signals),
    stats: new StatsService(deps.database, deps.clock),
    users: new UserService(deps.database, deps.clock),
    sessions: new SessionService(deps.database, deps.clock),
    preview: new MailingPreview(deps.database, deps.clock),
    blocklist: new BlocklistService(deps.database, deps.clock, deps.logger, audit, signals),
    importCheck: new ImportChecker(deps.database, deps.clock),
    audit,
    userAdmin: new UserAdmin(deps.database, deps.clock),
    identities: new IdentityService(deps.database, deps.clock, deps.config.adminEmails ?? []),
    oauth: new OAuthProviders(deps.config.oauth ?? { github: null, google: null, oidc: null }, deps.oauthEndpoints),
    /** Stops what the services started (the open-mailings cache's LISTEN). */
    close: () => openMailings.close(),
  };
}

export async function createApp(deps: AppDeps) {
  const services = createServices(deps);
  const guard = apiGuard(services.tokens, deps.config.adminApiKey ? await sha256Hex(deps.config.adminApiKey) : null);
  // The routes, for the 405's Allow header; filled in once they are all registered below.
  const registered: { routes: readonly { method: string; path: string }[] } = { routes: [] };
  const metrics = deps.metrics ?? new Metrics(deps.database, deps.clock);
  const seen = observed();
  const app = new Elysia()
    // The database deadline of each request (PostgreSQL only: PGlite runs in the process and has no
    // connection to lose). Registered first, so the innermost wrap: the Idempotency-Key's own
    // bookkeeping around the handler is not under it (db/deadline.ts).
    .wrap((deps.database.kind === "postgres" && deps.config.dbRequestTimeoutMs ? requestDeadline(deps.config.dbRequestTimeoutMs) : (handle: (r: Request) => unknown) => handle) as never)
    .wrap(routeByPath as never)
    // Idempotency-Key on the create routes: replays answer before routing (http/idempotency.ts).
    .wrap(idempotency(deps.database, deps.clock, (route) => seen.setRoute(route), deps.logger, deps.idempotencyTiming) as never)
    // CSP, nosniff, Referrer-Policy and no-store on every answer, the inner wraps' own included.
    .wrap(securityHeaders as never)
    // The request log line, metrics and X-Request-Id: registered last, so the outermost wrap, which
    // sees every answer, the inner wraps' own included (ops/observe.ts).
    .wrap(observeRequests(seen, deps.logger, metrics) as never)
    // The matched route template, for the request log and metrics.
    .onTransform(({ route }) => seen.setRoute(route))
    .onRequest(({ request }) => {
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > jsonBodyLimit && !/\/(clients|blocklist)\/import$/.test(new URL(request.url).pathname)) {
        return problemResponse(
          new Problem(413, `the body is larger than ${jsonBodyLimit} bytes`, [{ field: "body", message: "too large" }]),
        );
      }
    })
    .onParse(({ request, contentType }) => parseJsonBody(request, contentType))
    .onError(({ code, error, request, route }) => {
      if (route) seen.setRoute(route);
      // The route template, never the raw path, which can hold a token (observe.ts).
      const logger = deps.logger.child({ request_id: seen.id(), route: route ? route.replace(/(.)\/$/, "$1") : unmatched });
      return renderError(code, error, request, logger, (path) => allowedMethods(registered.routes, path));
    })
    .use(
      openapi({
        path: "/docs",
        specPath: "/docs/json",
        provider: "swagger-ui",
        // `url` is absolute so that /docs/ (trailing slash) finds the spec too; the plugin's types omit it.
        swagger: { cdn: "/docs/assets/swagger-ui-bundle.js", theme: "/docs/assets/swagger-ui.css", autoDarkMode: false, ...({ url: "/docs/json" } as object) },
        exclude: { paths: [/^\/static/, /^\/docs/] },
        documentation: {
          info: {
            title: "Notification service API",
            version: "1",
            description:
              "Clients, mailings and statistics. Every /api/v1 route needs `Authorization: Bearer <token>` (a personal API token or ADMIN_API_KEY). Errors are RFC 9457 problem documents. Mailing start_time and end_time are wall-clock times reached in each client's own time zone; an offset or Z in the input is ignored.",
          },
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
          security: [{ bearer: [] }],
          tags: [
            { name: "clients", description: "The client directory" },
            { name: "mailings", description: "Mailings and their lifecycle" },
            { name: "stats", description: "Delivery statistics" },
            { name: "tokens", description: "Personal API tokens" },
            { name: "audit", description: "The audit log of admin and security events (admins only)" },
            { name: "blocklist", description: "Opted-out phones: no mailing sends to them" },
            { name: "compatibility", description: "Routes of the original service, kept for existing callers" },
            { name: "operations", description: "Health checks" },
          ],
        },
      }),
    )
    .use(assetRoutes())
    .use(healthRoutes(deps.database, deps.stopping))
    .use(await metricsRoutes(metrics, deps.config.metricsToken ?? null))
    .group("/api/v1", (api) =>
      api
        .use(clientRoutes(guard, services.clients, services.importer, () => deps.logger.child({ request_id: seen.id(), route: "/api/v1/clients/import" })))
        .use(mailingRoutes(guard, services.mailings, services.audit))
        .use(statsRoutes(guard, services.stats))
        .use(tokenRoutes(guard, services.tokens, deps.clock, services.audit))
        .use(auditRoutes(guard, services.audit))
        .use(blocklistRoutes(guard, services.blocklist)),
    )
    .use(compatRoutes(guard, services))
    .use(webhookRoutes(deps.database, deps.clock, { provider: deps.config.provider ?? { name: "sandbox" }, webhookToken: deps.config.webhookToken ?? null, publicUrl: deps.config.publicUrl ?? null }, services.blocklist))
    .use(webRoutes(new Web(services.users, services.sessions, { registration: deps.config.registration ?? "open", publicUrl: deps.config.publicUrl ?? null, sandbox: !!deps.outbox }), services, deps.clock, deps.outbox ?? null, deps.gateway ?? null));
  registered.routes = app.routes;
  // `close()` stops the services' listeners; call it before closing the database the app was built on.
  return Object.assign(app, { close: services.close });
}

export type App = Awaited<ReturnType<typeof createApp>>;
