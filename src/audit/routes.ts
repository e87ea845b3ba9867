/** GET /api/v1/audit (SPEC §9): the audit log for admins, newest first, filterable by user and kind. */
import { Elysia, t } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { problemSchema } from "../http/openapi";
import { pageQuery, parseId, parsePage } from "../http/params";
import { invalid, Problem } from "../problems";
import { auditKinds, isAuditKind } from "./kinds";
import type { AuditLog } from "./log";

const entry = t.Object({
  id: t.Integer(),
  at: t.String({ format: "date-time" }),
  actor_user_id: t.Union([t.Integer(), t.Null()]),
  kind: t.String({ examples: ["signin.oauth"] }),
  target: t.Union([t.String(), t.Null()]),
  detail: t.Record(t.String(), t.Unknown()),
  ip: t.Union([t.String(), t.Null()]),
});

export function auditRoutes(guard: ApiGuard, audit: AuditLog) {
  return new Elysia({ prefix: "/audit", tags: ["audit"] }).use(guard).get(
    "/",
    ({ actor, query }) => {
      if (actor.role !== "admin") throw new Problem(403, "the audit log is for admins", [{ field: "authorization", message: "admins only" }]);
      const { limit, cursor } = parsePage(query);
      const userId = query.user_id === undefined || query.user_id === "" ? undefined : parseId(query.user_id, "user_id");
      let kind;
      if (query.kind !== undefined && query.kind !== "") {
        if (!isAuditKind(query.kind)) throw invalid("kind", `must be one of ${auditKinds.join(", ")}`);
        kind = query.kind;
      }
      return audit.list({ userId, kind }, limit, cursor);
    },
    {
      query: t.Object({
        ...pageQuery,
        user_id: t.Optional(t.String({ description: "Only events by this user (actor)" })),
        kind: t.Optional(t.String({ description: `One of ${auditKinds.join(", ")}` })),
      }),
      response: { 200: t.Object({ items: t.Array(entry), next_cursor: t.Union([t.Integer(), t.Null()]) }), 403: problemSchema, 422: problemSchema },
      detail: { summary: "The audit log of admin and security events (admins only)" },
    },
  );
}
