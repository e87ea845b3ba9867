/**
 * SMS.ru (`PROVIDER=smsru`): `POST {base}/sms/send`, form fields `api_id`, `to` (digits), `msg`,
 * `json=1` and optionally `from` (an approved sender name). The answer is HTTP 200 whatever happened;
 * the outcome is in the JSON: a request-level `status_code`, then one per number under `sms`:
 *
 *   {"status":"OK","status_code":100,"sms":{"79101459028":{"status":"OK","status_code":100,"sms_id":"000000-10000000"}},"balance":4122.56}
 *   {"status":"ERROR","status_code":200,"status_text":"Неправильный api_id"}
 *
 * 100 is accepted (`sms_id` is the id delivery receipts name). Failed for good — the message or the
 * number is at fault: 202 wrong recipient, 203 no text, 205 text too long, 207 number not reachable,
 * 209 number in the account's stop list, 212 text not UTF-8. Everything else is retried: 200/300/301/302
 * (credentials), 201 (balance), 204 (sender name not approved), 206/230–233 (limits), 220 and 500
 * (service unavailable) — the operator fixes them, or they pass. A non-200 HTTP status or a body that
 * is not the documented JSON is retried too: nothing says the message was taken.
 */
import { type Answer, exchange, form, formHeaders, jsonOf } from "./exchange";
import { Deadlines } from "./deadlines";
import type { Gateway, OutgoingMessage, SendResult } from "./gateway";

export type SmsRuOptions = { apiId: string; from: string | null; baseUrl: string; timeoutMs: number };

/** Codes that fail the message for good (see above). */
const permanent = new Set([202, 203, 205, 207, 209, 212]);

type Status = { status?: unknown; status_code?: unknown; status_text?: unknown; sms_id?: unknown };

export class SmsRuGateway implements Gateway {
  readonly name = "smsru";
  private readonly url: string;
  private readonly deadlines: Deadlines;

  constructor(private readonly options: SmsRuOptions) {
    this.url = `${options.baseUrl.replace(/\/+$/, "")}/sms/send`;
    this.deadlines = new Deadlines(options.timeoutMs);
  }

  async send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    const answer = await exchange(
      this.url,
      {
        method: "POST",
        headers: formHeaders,
        body: form({ api_id: this.options.apiId, to: message.phone, msg: message.text, json: "1", from: this.options.from ?? undefined }),
      },
      this.deadlines,
      signal,
    );
    return "outcome" in answer ? answer : smsRuResult(answer, message.phone);
  }
}

function smsRuResult(answer: Answer, phone: string): SendResult {
  if (answer.status !== 200) return { outcome: "retry", error: `gateway answered HTTP ${answer.status}` };
  const body = jsonOf(answer) as (Status & { sms?: Record<string, Status> }) | null;
  if (!body || typeof body.status_code !== "number") return { outcome: "retry", error: "gateway answered an unreadable body" };
  // A request-level error (credentials, balance, …) carries no per-number part.
  const status = body.status_code === 100 ? body.sms?.[phone] : body;
  if (!status || typeof status.status_code !== "number") return { outcome: "retry", error: "gateway answered no status for the number" };
  if (status.status_code === 100) {
    return typeof status.sms_id === "string" ? { outcome: "sent", providerId: status.sms_id } : { outcome: "sent" };
  }
  const error = `SMS.ru ${status.status_code}: ${String(status.status_text ?? "").slice(0, 200)}`;
  return permanent.has(status.status_code) ? { outcome: "failed", error } : { outcome: "retry", error };
}
