/** Placeholder for the mailing pages (next step of issue 11), so the navigation leads somewhere. */
import { Elysia } from "elysia";
import type { Web } from "../context";

export function mailingPageRoutes(web: Web) {
  return new Elysia().get(
    "/mailings",
    web.handler("user", (page) => web.render(page, "./mailings", { title: page.tr.t("mailings.title") })),
    { detail: { hide: true } },
  );
}
