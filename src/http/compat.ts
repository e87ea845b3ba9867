/**
 * Routes of the original service, kept for existing callers (SPEC §8): the v1 operations themselves
 * (handler, schemas, documented responses) mounted on the old paths, with the same auth. Marked
 * deprecated in the OpenAPI document. Each answers with or without the trailing slash.
 */
import { Elysia } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { clientWrites } from "../clients/routes";
import type { ClientService } from "../clients/service";
import { mailingWrites } from "../mailings/routes";
import type { MailingService } from "../mailings/service";
import { statsReads } from "../stats/routes";
import type { StatsService } from "../stats/service";
import { deprecated } from "./operations";
import type { AuditLog } from "../audit/log";

type Services = { clients: ClientService; mailings: MailingService; stats: StatsService; audit: AuditLog };

/** Registers a path with and without its trailing slash. */
const both = (path: string) => [path, `${path}/`] as const;

export function compatRoutes(guard: ApiGuard, services: Services) {
  const clients = clientWrites(services.clients);
  const mailings = mailingWrites(services.mailings, services.audit);
  const stats = statsReads(services.stats);
  const app = new Elysia().use(guard);
  for (const path of both("/clients/create")) {
    app.post(path, clients.create.handler, deprecated(clients.create.hook, "Create a client (use POST /api/v1/clients)"));
  }
  for (const path of both("/clients/update/:id")) {
    app.patch(path, clients.update.handler, deprecated(clients.update.hook, "Update a client (use PATCH /api/v1/clients/{id})"));
  }
  for (const path of both("/clients/delete/:id")) {
    app.delete(path, clients.remove.handler, deprecated(clients.remove.hook, "Delete a client (use DELETE /api/v1/clients/{id})"));
  }
  for (const path of both("/mailing/create")) {
    app.post(path, mailings.create.handler, deprecated(mailings.create.hook, "Create a mailing (use POST /api/v1/mailings)"));
  }
  for (const path of both("/mailing/update/:id")) {
    app.patch(path, mailings.update.handler, deprecated(mailings.update.hook, "Update a mailing (use PATCH /api/v1/mailings/{id})"));
  }
  for (const path of both("/mailing/delete/:id")) {
    app.delete(path, mailings.remove.handler, deprecated(mailings.remove.hook, "Delete a mailing (use DELETE /api/v1/mailings/{id})"));
  }
  for (const path of both("/stats")) {
    app.get(path, stats.overall.handler, deprecated(stats.overall.hook, "Statistics (use GET /api/v1/stats)"));
  }
  for (const path of both("/stats/:id")) {
    app.get(path, stats.mailing.handler, deprecated(stats.mailing.hook, "One mailing's statistics (use GET /api/v1/stats/{id})"));
  }
  return app;
}
