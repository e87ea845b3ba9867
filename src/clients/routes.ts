/** /api/v1/clients (SPEC §3, §8). Handlers pull values out of the request and call the service. */
import { Elysia, t } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { idParams, parseId, parsePage, parseQueryText } from "../http/params";
import { jsonBody, problemSchema } from "../http/openapi";
import { client, clientCreate, clientList, clientPatch, clientQuery } from "./model";
import type { ClientService } from "./service";

export function clientRoutes(guard: ApiGuard, service: ClientService) {
  return new Elysia({ prefix: "/clients", tags: ["clients"] })
    .use(guard)
    .get(
      "/",
      ({ query }) => {
        const { limit, cursor } = parsePage(query);
        const filter = {
          // `?tag=` (empty) lists the clients without a tag.
          tag: parseQueryText(query.tag, "tag"),
          operatorCode: parseQueryText(query.operator_code || undefined, "operator_code"),
          q: parseQueryText(query.q, "q")?.replace(/\D/g, ""),
        };
        return service.list(filter, limit, cursor);
      },
      { query: clientQuery, response: { 200: clientList }, detail: { summary: "List clients" } },
    )
    .post(
      "/",
      async ({ body, set }) => {
        const created = await service.create(body);
        set.status = 201;
        set.headers.location = `/api/v1/clients/${created.id}`;
        return created;
      },
      {
        ...jsonBody,

        body: clientCreate,
        response: { 201: client, 409: problemSchema, 422: problemSchema },
        detail: { summary: "Create a client" },
      },
    )
    .get("/:id", ({ params }) => service.get(parseId(params.id)), {
      params: idParams,
      response: { 200: client, 404: problemSchema },
      detail: { summary: "Get a client" },
    })
    .patch("/:id", ({ params, body }) => service.update(parseId(params.id), body), {
      params: idParams,
      ...jsonBody,

      body: clientPatch,
      response: { 200: client, 404: problemSchema, 409: problemSchema, 422: problemSchema },
      detail: { summary: "Change some fields of a client; re-plans its unsent messages" },
    })
    .delete(
      "/:id",
      async ({ params, set }) => {
        await service.remove(parseId(params.id));
        set.status = 204;
      },
      {
        params: idParams,
        response: { 204: t.Void(), 404: problemSchema },
        detail: { summary: "Delete a client; its unsent messages are cancelled" },
      },
    );
}
