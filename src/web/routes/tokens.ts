/** API tokens page (SPEC §9): create (the secret shown once), list, revoke — through TokenService. */
import { Elysia } from "elysia";
import type { Clock } from "../../clock";
import type { TokenService } from "../../auth/tokens";
import { attempt, formValues } from "../forms";
import type { Page, Web } from "../context";
import { parseId } from "../../http/params";
import { type AuditLog, requestAddress } from "../../audit/log";

type Ctx = { request: Request; body: unknown; params: { id?: string } };

export function tokenPageRoutes(web: Web, tokens: TokenService, clock: Clock, audit: AuditLog) {
  const show = async (page: Page, data: Record<string, unknown> = {}, status = 200) => {
    const list = await tokens.list(page.actor!, 200, null);
    return web.render(page, "./tokens", { title: page.tr.t("tokens.title"), tokens: list.items, name: "", errors: {}, created: null, ...data }, status);
  };
  return new Elysia()
    .get("/tokens", web.handler("user", (page) => show(page)), { detail: { hide: true } })
    .post(
      "/tokens",
      web.handler<Ctx>("user", async (page, ctx) => {
        const { name } = formValues(ctx.body, ["name"] as const);
        const trimmed = name.trim();
        const error = trimmed === "" ? "name.empty" : trimmed.length > 100 ? "name.long" : null;
        if (error) return show(page, { name, errors: { name: page.tr.t(error) } }, 422);
        const created = await tokens.create(page.actor!, trimmed, clock.now());
        await audit.record({ kind: "token.created", actorUserId: page.user!.userId, target: `token:${created.id}`, detail: { name: trimmed, role: created.role }, ip: requestAddress(ctx) });
        return show(page, { created });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/tokens/:id/revoke",
      web.handler<Ctx>("user", async (page, ctx) => {
        // A hand-made id the API would refuse (0, 007) is a 404 page here, not the API's JSON 422.
        const id = /^[1-9]\d{0,8}$/.test(ctx.params.id ?? "") ? parseId(ctx.params.id) : null;
        if (id === null) return web.error(page, 404, "error.notFound");
        const result = await attempt(() => tokens.revoke(page.actor!, id, clock.now()));
        if (!result.ok) return web.error(page, 404, "error.notFound");
        await audit.record({ kind: "token.revoked", actorUserId: page.user!.userId, target: `token:${id}`, ip: requestAddress(ctx) });
        return show(page);
      }),
      { detail: { hide: true } },
    );
}
