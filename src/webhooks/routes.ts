/**
 * `POST /webhooks/{provider}`: delivery receipts (issue 15 item 2). No session, bearer token or CSRF
 * token: each request carries its own proof — Twilio's `X-Twilio-Signature` (keyed by the auth
 * token), or for SMS.ru and SMSC.ru, whose callbacks carry no signature we can check, a secret path
 * segment (`/webhooks/smsru/{WEBHOOK_TOKEN}`, README "Delivery receipts" says why). The segment is
 * compared as SHA-256 digests in constant time (no length or prefix leaks); the request log names
 * the route template, never the path. A request without a valid proof changes nothing: 403 for a bad
 * signature, 404 for a wrong or unconfigured path. An inbound reply of STOP puts the sender on the
 * blocklist where the provider passes replies on: Twilio (the number's messaging webhook set to the
 * same URL) and SMSC.ru (replies to a dedicated number come to the same handler as `phone` and
 * `mes`); SMS.ru passes no replies.
 */
import { Elysia } from "elysia";
import type { Clock } from "../clock";
import type { ProviderConfig } from "../config";
import type { Database } from "../db/client";
import { type Receipt, recordReceipt } from "../dispatch/receipts";
import { constantTimeEqual, sha256Hex } from "../auth/crypto";
import type { BlocklistService } from "../blocklist/service";
import { normalizePhone } from "../clients/phone";
import { smscReceipts, smsRuReceipts, twilioReceipts, twilioSignatureValid } from "./receipts";

export type WebhookConfig = { provider: ProviderConfig; webhookToken: string | null; publicUrl: string | null };

/** The raw body (parseJsonBody hands /webhooks/ bodies over as text) as form fields. */
function fieldsOf(body: unknown): URLSearchParams {
  return new URLSearchParams(typeof body === "string" ? body : "");
}

/** Twilio's standard opt-out keywords (and Russian "стоп"), as a whole reply, any case. */
const stopWords = new Set(["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "стоп"]);

export function webhookRoutes(database: Database, clock: Clock, config: WebhookConfig, blocklist: BlocklistService) {
  const apply = async (receipts: Receipt[]) => {
    for (const receipt of receipts) await recordReceipt(database.db, receipt, clock.now());
  };
  const expectedToken = config.webhookToken === null ? null : sha256Hex(config.webhookToken);
  const tokenMatches = async (token: string) => expectedToken !== null && constantTimeEqual(await sha256Hex(token), await expectedToken);
  const isStop = (text: string | null) => stopWords.has((text ?? "").trim().toLowerCase());
  const notFound = () => new Response("not found", { status: 404 });
  const twilioToken = config.provider.name === "twilio" ? config.provider.authToken : null;

  return new Elysia({ name: "webhooks" })
    .post("/webhooks/twilio", async ({ request, body }) => {
      if (!twilioToken) return notFound();
      const fields = fieldsOf(body);
      // Twilio signs the URL it called, query string included: behind a proxy that is PUBLIC_URL's,
      // not the one we see.
      const seen = new URL(request.url);
      const url = config.publicUrl ? `${config.publicUrl.replace(/\/+$/, "")}${seen.pathname}${seen.search}` : request.url;
      if (!twilioSignatureValid(twilioToken, url, fields, request.headers.get("x-twilio-signature"))) {
        return new Response("invalid signature", { status: 403 });
      }
      // An inbound reply (the number's messaging webhook pointed here): STOP puts the sender on the blocklist.
      const from = fields.get("From");
      if (!fields.has("MessageStatus") && from && isStop(fields.get("Body"))) {
        const phone = normalizePhone(from);
        if (phone.ok) await blocklist.block(phone.phone, "replied STOP (Twilio)", "twilio");
        return new Response("", { status: 204 });
      }
      await apply(twilioReceipts(fields));
      return new Response("", { status: 204 });
    }, { detail: { hide: true } })
    .post("/webhooks/smsru/:token", async ({ params, body }) => {
      if (!(await tokenMatches(params.token))) return notFound();
      await apply(smsRuReceipts(fieldsOf(body)));
      // SMS.ru repeats a callback until it reads 100.
      return new Response("100");
    }, { detail: { hide: true } })
    .post("/webhooks/smsc/:token", async ({ params, body }) => {
      if (!(await tokenMatches(params.token))) return notFound();
      const fields = fieldsOf(body);
      // An inbound message (a reply to a dedicated number: `phone` and `mes`, no `status`).
      const from = fields.get("phone");
      if (!fields.has("status") && fields.has("mes")) {
        const phone = from && isStop(fields.get("mes")) ? normalizePhone(from) : null;
        if (phone?.ok) await blocklist.block(phone.phone, "replied STOP (SMSC.ru)", "smsc");
        return new Response("OK");
      }
      await apply(smscReceipts(fields));
      return new Response("OK");
    }, { detail: { hide: true } });
}
