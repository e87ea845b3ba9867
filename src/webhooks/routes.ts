/**
 * `POST /webhooks/{provider}`: delivery receipts (issue 15 item 2). No session, bearer token or CSRF
 * token: each request carries its own proof — Twilio's `X-Twilio-Signature` (keyed by the auth
 * token), or for SMS.ru and SMSC.ru, which sign nothing, a secret path segment
 * (`/webhooks/smsru/{WEBHOOK_TOKEN}`). A request without a valid proof changes nothing: 403 for a
 * bad signature, 404 for a wrong or unconfigured path. An inbound Twilio reply of STOP (the number's
 * messaging webhook set to the same URL) puts the sender on the blocklist; SMS.ru and SMSC.ru
 * deliver no inbound messages here.
 */
import { Elysia } from "elysia";
import type { Clock } from "../clock";
import type { ProviderConfig } from "../config";
import type { Database } from "../db/client";
import { type Receipt, recordReceipt } from "../dispatch/receipts";
import { constantTimeEqual } from "../auth/crypto";
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
  const tokenMatches = (token: string) => config.webhookToken !== null && constantTimeEqual(token, config.webhookToken);
  const notFound = () => new Response("not found", { status: 404 });
  const twilioToken = config.provider.name === "twilio" ? config.provider.authToken : null;

  return new Elysia({ name: "webhooks" })
    .post("/webhooks/twilio", async ({ request, body }) => {
      if (!twilioToken) return notFound();
      const fields = fieldsOf(body);
      // Twilio signs the URL it called: behind a proxy that is PUBLIC_URL's, not the one we see.
      const url = config.publicUrl ? `${config.publicUrl.replace(/\/+$/, "")}${new URL(request.url).pathname}` : request.url;
      if (!twilioSignatureValid(twilioToken, url, fields, request.headers.get("x-twilio-signature"))) {
        return new Response("invalid signature", { status: 403 });
      }
      // An inbound reply (the number's messaging webhook pointed here): STOP puts the sender on the blocklist.
      const from = fields.get("From");
      if (!fields.has("MessageStatus") && from && stopWords.has((fields.get("Body") ?? "").trim().toLowerCase())) {
        const phone = normalizePhone(from);
        if (phone.ok) await blocklist.block(phone.phone, "replied STOP (Twilio)", "twilio");
        return new Response("", { status: 204 });
      }
      await apply(twilioReceipts(fields));
      return new Response("", { status: 204 });
    }, { detail: { hide: true } })
    .post("/webhooks/smsru/:token", async ({ params, body }) => {
      if (!tokenMatches(params.token)) return notFound();
      await apply(smsRuReceipts(fieldsOf(body)));
      // SMS.ru repeats a callback until it reads 100.
      return new Response("100");
    }, { detail: { hide: true } })
    .post("/webhooks/smsc/:token", async ({ params, body }) => {
      if (!tokenMatches(params.token)) return notFound();
      await apply(smscReceipts(fieldsOf(body)));
      return new Response("OK");
    }, { detail: { hide: true } });
}
