/** Opt-out blocklist page (issue 15 item 5): list, block a phone, unblock — through BlocklistService. */
import { Elysia } from "elysia";
import type { BlocklistService } from "../../blocklist/service";
import { actorName } from "../../blocklist/routes";
import { attempt, formValues } from "../forms";
import type { Page, Web } from "../context";

type Ctx = { request: Request; body: unknown; params: { phone?: string } };

export function blocklistPageRoutes(web: Web, blocklist: BlocklistService) {
  const show = async (page: Page, data: Record<string, unknown> = {}, status = 200) => {
    const list = await blocklist.list(1000, null);
    return web.render(page, "./blocklist", { title: page.tr.t("blocklist.title"), entries: list.items, more: list.next_cursor !== null, phone: "", reason: "", errors: {}, ...data }, status);
  };
  return new Elysia()
    .get("/blocklist", web.handler("user", (page) => show(page)), { detail: { hide: true } })
    .post(
      "/blocklist",
      web.handler<Ctx>("user", async (page, ctx) => {
        const { phone, reason } = formValues(ctx.body, ["phone", "reason"] as const);
        const result = await attempt(() => blocklist.block(phone, reason.trim(), actorName(page.actor!)));
        if (!result.ok) return show(page, { phone, reason, errors: { phone: page.tr.t("blocklist.badPhone") } }, 422);
        return show(page);
      }),
      { detail: { hide: true } },
    )
    .post(
      "/blocklist/:phone/unblock",
      web.handler<Ctx>("user", async (page, ctx) => {
        const result = await attempt(() => blocklist.unblock(ctx.params.phone ?? "", actorName(page.actor!)));
        if (!result.ok) return web.error(page, 404, "error.notFound");
        return show(page);
      }),
      { detail: { hide: true } },
    );
}
