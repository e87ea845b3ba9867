/**
 * The sandbox outbox (issue 11): with no gateway configured, what the built-in sandbox "sent" in
 * this process, newest first — so a newcomer sees the service work without a gateway.
 */
import { Elysia } from "elysia";
import type { OutgoingMessage } from "../../gateway/gateway";
import type { Web } from "../context";

export type Outbox = { readonly sent: readonly OutgoingMessage[]; readonly total: number };

export const outboxShown = 200;

export function outboxRoutes(web: Web, outbox: Outbox | null) {
  return new Elysia().get(
    "/outbox",
    web.handler("user", (page) =>
      web.render(page, "./outbox", {
        title: page.tr.t("outbox.title"),
        enabled: outbox !== null,
        total: outbox?.total ?? 0,
        messages: outbox ? outbox.sent.slice(-outboxShown).reverse() : [],
      }),
    ),
    { detail: { hide: true } },
  );
}
