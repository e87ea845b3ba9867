/** /api/v1/stats and /api/v1/mailings/{id}/messages (SPEC §5, §8). */
import { Elysia } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { documentedResponses, problemSchema } from "../http/openapi";
import { idParams, parseId, parsePage } from "../http/params";
import { mailingStats, message, messageQuery, overallStats } from "./model";
import { parseMessageStatus, type StatsService } from "./service";
import { t } from "elysia";
import { csvResponse } from "../clients/export";

/** The statistics reads, each a handler and its hook: mounted below and by the compatibility routes (http/compat.ts). */
export function statsReads(service: StatsService) {
  return {
    overall: {
      handler: () => service.overall(),
      hook: {
        detail: {
          summary: "Message counts by status, overall and per mailing (cancelled excluded)",
          responses: documentedResponses({ 200: overallStats }),
        },
      },
    },
    mailing: {
      handler: ({ params, query }: { params: { id: string }; query: { status?: string; limit?: string; cursor?: string } }) => {
        const { limit, cursor } = parsePage(query);
        return service.forMailing(parseId(params.id), parseMessageStatus(query.status), limit, cursor);
      },
      hook: {
        params: idParams,
        query: messageQuery,
        detail: {
          summary: "One mailing's counts and a page of its messages",
          responses: documentedResponses({ 200: mailingStats, 404: problemSchema }),
        },
      },
    },
  };
}

export function statsRoutes(guard: ApiGuard, service: StatsService) {
  const reads = statsReads(service);
  return new Elysia({ tags: ["stats"] })
    .use(guard)
    .get("/stats", reads.overall.handler, reads.overall.hook)
    .get("/stats/:id", reads.mailing.handler, reads.mailing.hook)
    .get(
      "/mailings/:id/messages/export",
      async ({ params, query }) => {
        const id = parseId(params.id);
        const stream = await service.exportMessages(id, parseMessageStatus(query.status));
        return csvResponse(stream, `mailing-${id}-messages.csv`);
      },
      {
        params: idParams,
        query: t.Object({ status: t.Optional(t.String()) }),
        detail: {
          summary: "Export a mailing's messages as CSV",
          description:
            "Columns: id, phone_number, status, attempts, due_at, sent_at, last_error, provider_message_id (instants in UTC, ISO 8601). Every status unless `status` names one; streamed, grouped by status, by id within a status.",
          tags: ["mailings"],
          responses: { ...documentedResponses({ 404: problemSchema }), 200: { description: "CSV", content: { "text/csv": { schema: { type: "string" } } } } },
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
