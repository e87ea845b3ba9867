/** /api/v1/mailings (SPEC §4, §8). */
import { Elysia, t } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { jsonBody, problemSchema } from "../http/openapi";
import { idParams, parseId, parsePage } from "../http/params";
import { invalid } from "../problems";
import { listsOnly } from "../http/errors";
import type { ResponseSet } from "../http/operations";
import {
  mailing,
  type MailingCreate,
  mailingCreate,
  mailingList,
  type MailingPatch,
  mailingPatch,
  mailingQuery,
  type MailingStatus,
  mailingStatuses,
} from "./model";
import type { MailingService } from "./service";
import type { Actor } from "../auth/actor";
import { type AuditLog, requestAddress } from "../audit/log";

type Who = { actor: Actor; request: Request };

/** Deleting and cancelling a mailing are audited (SPEC §9): who (null: ADMIN_API_KEY) and from where. */
function audited(audit: AuditLog | undefined, kind: "mailing.deleted" | "mailing.cancelled", id: number, who: Who) {
  return audit?.record({ kind, actorUserId: who.actor.userId, target: `mailing:${id}`, detail: { via: who.actor.kind }, ip: requestAddress(who) });
}

function parseStatus(raw: string | undefined): MailingStatus | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!(mailingStatuses as string[]).includes(raw)) {
    throw invalid("status", `must be one of ${mailingStatuses.join(", ")}`);
  }
  return raw as MailingStatus;
}

/** The mailing writes, each a handler and its hook: mounted below and by the compatibility routes (http/compat.ts). */
export function mailingWrites(service: MailingService, audit?: AuditLog) {
  return {
    create: {
      handler: async ({ body, set }: { body: MailingCreate; set: ResponseSet }) => {
        const created = await service.create(body);
        set.status = 201;
        set.headers.location = `/api/v1/mailings/${created.id}`;
        return created;
      },
      hook: {
        ...jsonBody,
        body: mailingCreate,
        transform: listsOnly(mailingCreate),
        response: { 201: mailing, 422: problemSchema },
        detail: {
          summary: "Create a mailing and plan its messages",
          description:
            "start_time and end_time are wall-clock times reached in each client's own time zone. A trailing Z or offset is accepted and ignored: 2026-12-01T09:00:00Z means 09:00 in Moscow for a Moscow client and 09:00 in Vladivostok for a Vladivostok client.",
        },
      },
    },
    update: {
      handler: ({ params, body }: { params: { id: string }; body: MailingPatch }) => service.update(parseId(params.id), body),
      hook: {
        params: idParams,
        ...jsonBody,
        body: mailingPatch,
        transform: listsOnly(mailingPatch),
        response: { 200: mailing, 404: problemSchema, 409: problemSchema, 422: problemSchema },
        detail: { summary: "Change some fields of a mailing; re-plans its unsent messages" },
      },
    },
    remove: {
      handler: async (ctx: { params: { id: string }; set: ResponseSet } & Who) => {
        const id = parseId(ctx.params.id);
        await service.remove(id);
        await audited(audit, "mailing.deleted", id, ctx);
        ctx.set.status = 204;
      },
      hook: {
        params: idParams,
        response: { 204: t.Void(), 404: problemSchema },
        detail: { summary: "Delete a mailing and all its messages" },
      },
    },
  };
}

export function mailingRoutes(guard: ApiGuard, service: MailingService, audit?: AuditLog) {
  const writes = mailingWrites(service, audit);
  const action = (name: "pause" | "resume" | "cancel", summary: string) =>
    new Elysia().use(guard).post(`/:id/${name}`, async (ctx) => {
      const id = parseId(ctx.params.id);
      const result = await service[name](id);
      if (name === "cancel") await audited(audit, "mailing.cancelled", id, ctx);
      return result;
    }, {
      params: idParams,
      response: { 200: mailing, 404: problemSchema, 409: problemSchema },
      detail: { summary },
    });
  return new Elysia({ prefix: "/mailings", tags: ["mailings"] })
    .use(guard)
    .get(
      "/",
      ({ query }) => {
        const { limit, cursor } = parsePage(query);
        return service.list(parseStatus(query.status), limit, cursor);
      },
      { query: mailingQuery, response: { 200: mailingList }, detail: { summary: "List mailings" } },
    )
    .post("/", writes.create.handler, writes.create.hook)
    .get("/:id", ({ params }) => service.get(parseId(params.id)), {
      params: idParams,
      response: { 200: mailing, 404: problemSchema },
      detail: { summary: "Get a mailing" },
    })
    .patch("/:id", writes.update.handler, writes.update.hook)
    .delete("/:id", writes.remove.handler, writes.remove.hook)
    .use(action("pause", "Pause: nothing is sent until resumed; the window still ends on time"))
    .use(action("resume", "Resume a paused mailing; due messages go out at once"))
    .use(action("cancel", "Stop for good: unsent messages become cancelled, history stays"));
}
