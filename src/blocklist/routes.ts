/** /api/v1/blocklist (issue 15 item 5): list, add, remove opted-out phones. */
import { Elysia, t } from "elysia";
import type { Actor } from "../auth/actor";
import type { ApiGuard } from "../auth/guard";
import { documentedResponses, jsonBody, problemSchema } from "../http/openapi";
import { invalid } from "../problems";
import { csvResponse } from "../clients/export";
import { csvSource } from "../clients/upload";
import { StreamedBody } from "../http/body";
import { exportBlocklist, importBlocklist } from "./csv";
import type { BlocklistService } from "./service";

const entry = t.Object({ phone_number: t.String(), reason: t.String(), created_at: t.String({ format: "date-time" }) });

/** Who did it, for the audit line: the token or user id, never a secret. */
export function actorName(actor: Actor): string {
  return actor.kind === "admin-key" ? "admin-key" : actor.kind === "token" ? `token:${actor.tokenId}` : `user:${actor.userId}`;
}

export function blocklistRoutes(guard: ApiGuard, service: BlocklistService) {
  return new Elysia({ prefix: "/blocklist", tags: ["blocklist"] })
    .use(guard)
    .get(
      "/",
      ({ query }) => {
        const limit = query.limit === undefined ? 100 : Number(query.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalid("limit", "must be a whole number from 1 to 1000");
        return service.list(limit, query.cursor || null);
      },
      {
        query: t.Object({ limit: t.Optional(t.String()), cursor: t.Optional(t.String({ description: "next_cursor of the previous page" })) }),
        detail: { summary: "Opted-out phones, in phone order", responses: documentedResponses({ 200: t.Object({ items: t.Array(entry), next_cursor: t.Union([t.String(), t.Null()]) }) }) },
      },
    )
    .post(
      "/",
      async ({ body, set, actor }) => {
        const { created, entry: blocked } = await service.block(body.phone_number, body.reason ?? "", actorName(actor as Actor));
        set.status = created ? 201 : 200;
        return blocked;
      },
      {
        ...jsonBody,
        body: t.Object(
          { phone_number: t.Union([t.String({ maxLength: 32 }), t.Number()]), reason: t.Optional(t.String({ maxLength: 200 })) },
          { examples: [{ phone_number: "+7 (910) 145-90-28", reason: "asked by phone" }] },
        ),
        detail: {
          summary: "Block a phone: no mailing sends to it; its waiting messages are cancelled (200 if already blocked)",
          responses: documentedResponses({ 201: entry, 200: entry, 422: problemSchema }),
        },
      },
    )
    .get("/export", async () => csvResponse(new Blob([await exportBlocklist(service)]).stream(), "blocklist.csv"), {
      detail: { summary: "The blocklist as CSV (phone_number,reason,created_at); the import reads it back" },
    })
    .post(
      "/import",
      async ({ body: raw, request, actor }) => {
        const source = await csvSource(raw instanceof StreamedBody ? raw.stream : null, request.headers.get("content-type"));
        return importBlocklist(service, source, actorName(actor as Actor));
      },
      { detail: { summary: "Block every phone of a CSV (phone_number, optional reason), as text/csv or a multipart upload" } },
    )
    .delete(
      "/:phone",
      async ({ params, set, actor }) => {
        await service.unblock(params.phone, actorName(actor as Actor));
        set.status = 204;
      },
      { detail: { summary: "Unblock a phone: its clients are planned into the open mailings again", responses: documentedResponses({ 404: problemSchema }) } },
    );
}
