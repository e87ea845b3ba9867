/** /api/v1/stats and /api/v1/mailings/{id}/messages (SPEC §5, §8). */
import { Elysia } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { documentedResponses, problemSchema } from "../http/openapi";
import { idParams, parseId, parsePage } from "../http/params";
import { mailingStats, message, messageQuery, overallStats } from "./model";
import { parseMessageStatus, type StatsService } from "./service";
import { t } from "elysia";

export function statsRoutes(guard: ApiGuard, service: StatsService) {
  return new Elysia({ tags: ["stats"] })
    .use(guard)
    .get("/stats", () => service.overall(), {
      detail: {
        summary: "Message counts by status, overall and per mailing (cancelled excluded)",
        responses: documentedResponses({ 200: overallStats }),
      },
    })
    .get(
      "/stats/:id",
      ({ params, query }) => {
        const { limit, cursor } = parsePage(query);
        return service.forMailing(parseId(params.id), parseMessageStatus(query.status), limit, cursor);
      },
      {
        params: idParams,
        query: messageQuery,
        detail: {
          summary: "One mailing's counts and a page of its messages",
          responses: documentedResponses({ 200: mailingStats, 404: problemSchema }),
        },
      },
    )
    .get(
      "/mailings/:id/messages",
      async ({ params, query }) => {
        const { limit, cursor } = parsePage(query);
        const id = parseId(params.id);
        const status = parseMessageStatus(query.status);
        await service.assertMailing(id);
        return service.messages(id, status, limit, cursor);
      },
      {
        params: idParams,
        query: messageQuery,
        response: { 200: t.Object({ items: t.Array(message), next_cursor: t.Union([t.Integer(), t.Null()]) }), 404: problemSchema },
        detail: { summary: "A page of a mailing's messages", tags: ["mailings"] },
      },
    );
}
