/** The browser UI (SPEC §9): page routes over the same services as the JSON API. */
import { Elysia } from "elysia";
import type { Clock } from "../clock";
import type { createServices } from "../app";
import { Web } from "./context";
import { accountRoutes } from "./routes/account";
import { clientPageRoutes } from "./routes/clients";
import { dashboardRoutes } from "./routes/dashboard";
import { mailingPageRoutes } from "./routes/mailings";
import { tokenPageRoutes } from "./routes/tokens";
import { blocklistPageRoutes } from "./routes/blocklist";
import { type Outbox, outboxRoutes } from "./routes/outbox";
import { importRoutes } from "./routes/import";
import { adminRoutes } from "./routes/admin";
import { oauthRoutes } from "./routes/oauth";
import { testSendRoutes } from "./routes/test-send";
import type { Gateway } from "../gateway/gateway";

export function webRoutes(web: Web, services: ReturnType<typeof createServices>, clock: Clock, outbox: Outbox | null, gateway: Gateway | null = null) {
  return new Elysia()
    .use(accountRoutes(web, clock, services.audit, services.oauth))
    .use(oauthRoutes(web, services.oauth, services.identities, services.audit, clock))
    .use(adminRoutes(web, services.userAdmin, services.tokens, services.audit, clock))
    .use(dashboardRoutes(web, services.stats, clock))
    .use(tokenPageRoutes(web, services.tokens, clock, services.audit))
    .use(blocklistPageRoutes(web, services.blocklist))
    .use(clientPageRoutes(web, services.clients))
    .use(outboxRoutes(web, outbox))
    .use(testSendRoutes(web, gateway, clock))
    .use(importRoutes(web, services.importer, services.importCheck, clock))
    .use(mailingPageRoutes(web, services.mailings, services.stats, services.preview, services.clients, services.audit));
}
