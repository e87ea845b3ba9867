/**
 * Routes of the original service, kept for existing callers (SPEC §8): same auth, same bodies, the
 * same services behind them. Marked deprecated in the OpenAPI document. Each answers with or
 * without the trailing slash.
 */
import { Elysia, t } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { clientCreate, clientPatch, client } from "../clients/model";
import type { ClientService } from "../clients/service";
import { mailing, mailingCreate, mailingPatch } from "../mailings/model";
import type { MailingService } from "../mailings/service";
import { mailingStats, messageQuery, overallStats } from "../stats/model";
import { parseMessageStatus, type StatsService } from "../stats/service";
import { jsonBody, problemSchema } from "./openapi";
import { idParams, parseId, parsePage } from "./params";

type Services = { clients: ClientService; mailings: MailingService; stats: StatsService };

const detail = (summary: string) => ({ summary, deprecated: true, tags: ["compatibility"] });

/** Registers a path with and without its trailing slash. */
const both = (path: string) => [path, `${path}/`] as const;

export function compatRoutes(guard: ApiGuard, services: Services) {
  const app = new Elysia().use(guard);
  for (const path of both("/clients/create")) {
    app.post(
      path,
      async ({ body, set }) => {
        const created = await services.clients.create(body);
        set.status = 201;
        set.headers.location = `/api/v1/clients/${created.id}`;
        return created;
      },
      { ...jsonBody, body: clientCreate, response: { 201: client, 409: problemSchema, 422: problemSchema }, detail: detail("Create a client (use POST /api/v1/clients)") },
    );
  }
  for (const path of both("/clients/update/:id")) {
    app.patch(path, ({ params, body }) => services.clients.update(parseId(params.id), body), {
      params: idParams,
      ...jsonBody,

      body: clientPatch,
      response: { 200: client, 404: problemSchema, 409: problemSchema, 422: problemSchema },
      detail: detail("Update a client (use PATCH /api/v1/clients/{id})"),
    });
  }
  for (const path of both("/clients/delete/:id")) {
    app.delete(
      path,
      async ({ params, set }) => {
        await services.clients.remove(parseId(params.id));
        set.status = 204;
      },
      { params: idParams, response: { 204: t.Void(), 404: problemSchema }, detail: detail("Delete a client (use DELETE /api/v1/clients/{id})") },
    );
  }
  for (const path of both("/mailing/create")) {
    app.post(
      path,
      async ({ body, set }) => {
        const created = await services.mailings.create(body);
        set.status = 201;
        set.headers.location = `/api/v1/mailings/${created.id}`;
        return created;
      },
      { ...jsonBody, body: mailingCreate, response: { 201: mailing, 422: problemSchema }, detail: detail("Create a mailing (use POST /api/v1/mailings)") },
    );
  }
  for (const path of both("/mailing/update/:id")) {
    app.patch(path, ({ params, body }) => services.mailings.update(parseId(params.id), body), {
      params: idParams,
      ...jsonBody,

      body: mailingPatch,
      response: { 200: mailing, 404: problemSchema, 409: problemSchema, 422: problemSchema },
      detail: detail("Update a mailing (use PATCH /api/v1/mailings/{id})"),
    });
  }
  for (const path of both("/mailing/delete/:id")) {
    app.delete(
      path,
      async ({ params, set }) => {
        await services.mailings.remove(parseId(params.id));
        set.status = 204;
      },
      { params: idParams, response: { 204: t.Void(), 404: problemSchema }, detail: detail("Delete a mailing (use DELETE /api/v1/mailings/{id})") },
    );
  }
  for (const path of both("/stats")) {
    app.get(path, () => services.stats.overall(), {
      response: { 200: overallStats },
      detail: detail("Statistics (use GET /api/v1/stats)"),
    });
  }
  for (const path of both("/stats/:id")) {
    app.get(
      path,
      ({ params, query }) => {
        const { limit, cursor } = parsePage(query);
        return services.stats.forMailing(parseId(params.id), parseMessageStatus(query.status), limit, cursor);
      },
      { params: idParams, query: messageQuery, response: { 200: mailingStats, 404: problemSchema }, detail: detail("One mailing's statistics (use GET /api/v1/stats/{id})") },
    );
  }
  return app;
}
