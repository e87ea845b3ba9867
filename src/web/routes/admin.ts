/**
 * The admin area (SPEC §9), admins only: users (role, disable/enable), every API token (owner, last
 * use, revoke) and the audit log (paginated, filtered by user and kind). Writes are form posts with
 * the CSRF token, like the rest of the UI; each one is recorded in the audit log.
 */
import { Elysia } from "elysia";
import type { AuditLog } from "../../audit/log";
import { requestAddress } from "../../audit/log";
import { auditKinds, isAuditKind } from "../../audit/kinds";
import type { Clock } from "../../clock";
import type { TokenService } from "../../auth/tokens";
import type { UserAdmin } from "../../auth/users";
import type { Page, Web } from "../context";
import { attempt, formValues } from "../forms";

type Ctx = { request: Request; body: unknown; params: { id?: string }; query: Record<string, string | undefined> };

/** A path or query id, or null (a form cannot send a bad one; a hand-made URL gets a 404). */
function idOf(raw: string | undefined): number | null {
  return raw !== undefined && /^\d{1,9}$/.test(raw) && Number(raw) > 0 ? Number(raw) : null;
}

export function adminRoutes(web: Web, userAdmin: UserAdmin, tokens: TokenService, audit: AuditLog, clock: Clock) {
  const usersPage = async (page: Page, notice: { ok: boolean; text: string } | null = null, status = 200) =>
    web.render(page, "./admin", { title: page.tr.t("admin.users"), users: await userAdmin.list(), notice }, status);

  const tokensPage = async (page: Page, cursor: number | null) => {
    const [list, users] = await Promise.all([tokens.list(page.actor!, 100, cursor), userAdmin.list()]);
    const owners = new Map(users.map((u) => [u.id, u.email]));
    return web.render(page, "./admin/tokens", { title: page.tr.t("admin.tokens"), tokens: list.items, next: list.next_cursor, owners });
  };

  /** Runs a change to a user and answers with the users page and what happened. */
  const changeUser = (run: (id: number, page: Page, ctx: Ctx) => Promise<Response>) =>
    web.handler<Ctx>("admin", async (page, ctx) => {
      const id = idOf(ctx.params.id);
      if (id === null) return web.error(page, 404, "error.notFound");
      return run(id, page, ctx);
    });

  const record = (page: Page, ctx: Ctx, kind: "user.role" | "user.disabled" | "user.enabled" | "token.revoked", target: string, detail: Record<string, unknown> = {}) =>
    audit.record({ kind, actorUserId: page.user!.userId, target, detail, ip: requestAddress(ctx) });

  return new Elysia()
    .get("/admin", web.handler("admin", (page) => usersPage(page)), { detail: { hide: true } })
    .post(
      "/admin/users/:id/role",
      changeUser(async (id, page, ctx) => {
        const { role } = formValues(ctx.body, ["role"] as const);
        if (role !== "admin" && role !== "operator") return usersPage(page, { ok: false, text: page.tr.t("admin.badRole") }, 422);
        const result = await userAdmin.setRole(id, role);
        if (!result.ok) return result.reason === "not-found" ? web.error(page, 404, "error.notFound") : usersPage(page, { ok: false, text: page.tr.t("admin.lastAdmin") }, 409);
        await record(page, ctx, "user.role", `user:${id}`, { email: result.user.email, role });
        return usersPage(page, { ok: true, text: page.tr.t("admin.roleChanged", { email: result.user.email, role: page.tr.t(`role.${role}`) }) });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/:id/disable",
      changeUser(async (id, page, ctx) => {
        const result = await userAdmin.setDisabled(id, true);
        if (!result.ok) return result.reason === "not-found" ? web.error(page, 404, "error.notFound") : usersPage(page, { ok: false, text: page.tr.t("admin.lastAdmin") }, 409);
        // Sessions and tokens already stop at their next use (both read users.disabled); this also frees the rows.
        await web.sessions.destroyAllOf(id);
        await record(page, ctx, "user.disabled", `user:${id}`, { email: result.user.email });
        return usersPage(page, { ok: true, text: page.tr.t("admin.disabled", { email: result.user.email }) });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/admin/users/:id/enable",
      changeUser(async (id, page, ctx) => {
        const result = await userAdmin.setDisabled(id, false);
        if (!result.ok) return web.error(page, 404, "error.notFound");
        await record(page, ctx, "user.enabled", `user:${id}`, { email: result.user.email });
        return usersPage(page, { ok: true, text: page.tr.t("admin.enabled", { email: result.user.email }) });
      }),
      { detail: { hide: true } },
    )
    .get("/admin/tokens", web.handler<Ctx>("admin", (page, ctx) => tokensPage(page, idOf(ctx.query.cursor))), { detail: { hide: true } })
    .post(
      "/admin/tokens/:id/revoke",
      web.handler<Ctx>("admin", async (page, ctx) => {
        const id = idOf(ctx.params.id);
        const result = id === null ? null : await attempt(() => tokens.revoke(page.actor!, id, clock.now()));
        if (!result?.ok) return web.error(page, 404, "error.notFound");
        await record(page, ctx, "token.revoked", `token:${id}`);
        return tokensPage(page, null);
      }),
      { detail: { hide: true } },
    )
    .get(
      "/admin/audit",
      web.handler<Ctx>("admin", async (page, ctx) => {
        const userId = idOf(ctx.query.user) ?? undefined;
        const kind = ctx.query.kind && isAuditKind(ctx.query.kind) ? ctx.query.kind : undefined;
        const [list, users] = await Promise.all([audit.list({ userId, kind }, 50, idOf(ctx.query.cursor)), userAdmin.list()]);
        const nextQuery = new URLSearchParams();
        if (userId) nextQuery.set("user", String(userId));
        if (kind) nextQuery.set("kind", kind);
        if (list.next_cursor) nextQuery.set("cursor", String(list.next_cursor));
        return web.render(page, "./admin/audit", {
          title: page.tr.t("admin.audit"),
          entries: list.items,
          next: list.next_cursor ? `/admin/audit?${nextQuery}` : null,
          users,
          emails: new Map(users.map((u) => [u.id, u.email])),
          kinds: auditKinds,
          filter: { user: userId ?? null, kind: kind ?? "" },
        });
      }),
      { detail: { hide: true } },
    );
}
