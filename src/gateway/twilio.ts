/**
 * Twilio Programmable Messaging (`PROVIDER=twilio`):
 * `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth (Account SID, auth
 * token), form fields `To` (E.164), `From` or `MessagingServiceSid`, `Body`, and `StatusCallback`
 * (where Twilio posts delivery receipts: {PUBLIC_URL}/webhooks/twilio). 201 answers the message
 * resource, whose `sid` ("SM…") the receipts name.
 *
 * Errors answer a JSON `{code, message, status}`. Which are worth retrying:
 * - network, timeout, 429 (code 20429, too many requests), 5xx: retried;
 * - 401/403/404 (credentials or account wrong, code 20003/20404): retried — the operator fixes the
 *   configuration, the messages are not at fault;
 * - any other 4xx (400: 21211 invalid `To`, 21610 recipient replied STOP, 21614 not a mobile, 21408
 *   region not enabled, …): failed for good, with Twilio's code and message.
 */
import { type Answer, exchange, form, formHeaders, jsonOf } from "./exchange";
import { Deadlines } from "./deadlines";
import { type Gateway, type OutgoingMessage, retryAfterMs, type SendResult } from "./gateway";

export type TwilioOptions = {
  accountSid: string;
  authToken: string;
  /** a sender number (E.164) or a messaging service SID ("MG…") */
  from: string;
  /** where Twilio posts status callbacks; null: none asked for */
  statusCallback: string | null;
  baseUrl: string;
  timeoutMs: number;
};

export class TwilioGateway implements Gateway {
  readonly name = "twilio";
  private readonly url: string;
  private readonly deadlines: Deadlines;
  private readonly authorization: string;

  constructor(private readonly options: TwilioOptions) {
    this.url = `${options.baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
    this.deadlines = new Deadlines(options.timeoutMs);
    this.authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString("base64")}`;
  }

  async send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    const sender = this.options.from.startsWith("MG") ? { MessagingServiceSid: this.options.from } : { From: this.options.from };
    const answer = await exchange(
      this.url,
      {
        method: "POST",
        headers: { ...formHeaders, authorization: this.authorization },
        body: form({ To: `+${message.phone}`, ...sender, Body: message.text, StatusCallback: this.options.statusCallback ?? undefined }),
      },
      this.deadlines,
      signal,
    );
    return "outcome" in answer ? answer : twilioResult(answer);
  }
}

function twilioResult(answer: Answer): SendResult {
  const body = jsonOf(answer) as { sid?: unknown; code?: unknown; message?: unknown } | null;
  if (answer.status >= 200 && answer.status < 300) {
    // Accepted: a body without a sid still means Twilio took it; only its receipts cannot be matched.
    return typeof body?.sid === "string" ? { outcome: "sent", providerId: body.sid } : { outcome: "sent" };
  }
  const detail = typeof body?.code === "number" ? ` (Twilio ${body.code}: ${String(body.message ?? "").slice(0, 200)})` : "";
  const error = `gateway answered HTTP ${answer.status}${detail}`;
  if (answer.status === 429) {
    const pause = retryAfterMs(answer.headers.get("retry-after"), Date.now());
    return pause === undefined ? { outcome: "retry", error } : { outcome: "retry", error, retryAfterMs: pause };
  }
  const retryable = [401, 403, 404, 408].includes(answer.status) || answer.status >= 500;
  return retryable ? { outcome: "retry", error } : { outcome: "failed", error };
}
