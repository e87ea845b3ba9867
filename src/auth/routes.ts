/** /api/v1/tokens (SPEC §8). */
import { Elysia, t } from "elysia";
import type { Clock } from "../clock";
import { jsonBody, problemSchema } from "../http/openapi";
import { idParams, pageQuery, parseId, parsePage } from "../http/params";
import { invalid } from "../problems";
import type { ApiGuard } from "./guard";
import type { TokenService } from "./tokens";
import { type AuditLog, requestAddress } from "../audit/log";

const tokenView = t.Object({
  id: t.Integer(),
  name: t.String(),
  role: t.String(),
  user_id: t.Union([t.Integer(), t.Null()]),
  created_at: t.String({ format: "date-time" }),
  last_used_at: t.Union([t.String({ format: "date-time" }), t.Null()]),
  revoked_at: t.Union([t.String({ format: "date-time" }), t.Null()]),
});

export function tokenRoutes(guard: ApiGuard, service: TokenService, clock: Clock, audit: AuditLog) {
  return new Elysia({ prefix: "/tokens", tags: ["tokens"] })
    .use(guard)
    .get(
      "/",
      (ctx) => {
        const { limit, cursor } = parsePage(ctx.query);
        return service.list(ctx.actor, limit, cursor);
      },
      {
        query: t.Object(pageQuery),
        response: { 200: t.Object({ items: t.Array(tokenView), next_cursor: t.Union([t.Integer(), t.Null()]) }) },
        detail: { summary: "List API tokens (admins: all; operators: their own)" },
      },
    )
    .post(
      "/",
      async (ctx) => {
        const name = ctx.body.name.trim();
        if (name.length === 0) throw invalid("name", "must not be empty");
        const created = await service.create(ctx.actor, name, clock.now());
        await audit.record({ kind: "token.created", actorUserId: ctx.actor.userId, target: `token:${created.id}`, detail: { name, role: created.role, via: ctx.actor.kind }, ip: requestAddress(ctx) });
        ctx.set.status = 201;
        ctx.set.headers.location = `/api/v1/tokens/${created.id}`;
        // The one answer that carries the secret: no cache on the way may keep it.
        ctx.set.headers["cache-control"] = "no-store";
        return created;
      },
      {
        ...jsonBody,

        body: t.Object({ name: t.String({ maxLength: 100 }) }, { examples: [{ name: "crm-sync" }] }),
        response: { 201: t.Composite([tokenView, t.Object({ token: t.String() })]), 422: problemSchema },
        detail: { summary: "Create an API token; the secret `token` is returned only this once" },
      },
    )
    .delete(
      "/:id",
      async (ctx) => {
        const id = parseId(ctx.params.id);
        await service.revoke(ctx.actor, id, clock.now());
        await audit.record({ kind: "token.revoked", actorUserId: ctx.actor.userId, target: `token:${id}`, detail: { via: ctx.actor.kind }, ip: requestAddress(ctx) });
        ctx.set.status = 204;
      },
      {
        params: idParams,
        response: { 204: t.Void(), 404: problemSchema },
        detail: { summary: "Revoke an API token" },
      },
    );
}
