/**
 * A test send (SPEC §9): the form's text to one phone through the configured gateway, before the
 * mailing starts. No mailing or message row is written; the outcome is shown beside the form.
 * Limited per user (a test send is a real SMS with a real cost), CSRF-checked like every write.
 */
import { Elysia } from "elysia";
import { FailureLimiter } from "../../auth/rate-limit";
import { normalizePhone } from "../../clients/phone";
import type { Clock } from "../../clock";
import type { Gateway, SendResult } from "../../gateway/gateway";
import type { Web } from "../context";
import { formValues } from "../forms";

export const testSendLimits = { perUser: 10, windowMs: 60_000, timeoutMs: 10_000 };
/** A test send has no message row; the gateway sees this id (SPEC §7's request carries one). */
export const testSendId = 0;

export function testSendRoutes(web: Web, gateway: Gateway | null, clock: Clock) {
  // FailureLimiter counts events in a sliding window; here every send counts, not only failures.
  const sends = new FailureLimiter(clock, testSendLimits.perUser, testSendLimits.windowMs);
  return new Elysia().post(
    "/mailings/test-send",
    web.handler<{ request: Request; body: unknown }>("user", async (page, ctx) => {
      const values = formValues(ctx.body, ["text", "test_phone"] as const);
      const show = (data: Record<string, unknown>, status = 200) =>
        web.render(page, "./mailings/_test-send", { wholePage: !page.htmx, title: page.tr.t("testSend.title"), ...data }, status);
      const phone = normalizePhone(values.test_phone);
      if (!phone.ok) return show({ error: page.tr.t("testSend.badPhone") }, 422);
      if (values.text.trim() === "" || values.text.length > 1000) return show({ error: page.tr.t("testSend.badText") }, 422);
      if (!gateway) return show({ error: page.tr.t("testSend.noGateway") }, 503);
      const key = String(page.user!.userId);
      if (sends.blocked(key)) {
        return show({ error: page.tr.t("testSend.limited", { seconds: sends.retryAfterSeconds(key) }) }, 429);
      }
      sends.fail(key);
      let result: SendResult;
      try {
        result = await gateway.send({ id: testSendId, phone: phone.phone, text: values.text }, AbortSignal.timeout(testSendLimits.timeoutMs));
      } catch (error) {
        result = { outcome: "retry", error: error instanceof Error ? error.message : String(error) };
      }
      return result.outcome === "sent"
        ? show({ sent: page.tr.t("testSend.sent", { phone: phone.phone, gateway: gateway.name }) })
        : show({ error: page.tr.t("testSend.failed", { error: result.error }) }, 502);
    }),
    { detail: { hide: true } },
  );
}
