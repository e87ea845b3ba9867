/**
 * SMSC.ru (`PROVIDER=smsc`): `POST {base}/sys/send.php`, form fields `login`, `psw` (the password or
 * an API key), `phones`, `mes`, `id`, `charset=utf-8`, `fmt=3` (answers in JSON) and optionally
 * `sender`. Our message id travels as `id`, so SMSC's id of the message — the one its status
 * callbacks name — is ours, and SMSC refuses a repeat of the same request within a minute.
 *
 *   {"id":117,"cnt":1}                                          accepted
 *   {"error":"invalid number","error_code":7,"id":117}          refused
 *
 * Error codes failed for good (the message or the number is at fault): 1 parameter error (e.g. text
 * too long), 6 message forbidden (text or sender name), 7 invalid number, 8 cannot be delivered to the
 * number. Retried: 2 (login or password), 3 (balance), 4 (IP blocked for a while after errors),
 * 9 (identical request within a minute, or too many at once), anything else, a non-200 status or a
 * body that is not the documented JSON. (5, a date format error, cannot happen: no date is sent.)
 */
import { type Answer, exchange, form, formHeaders, jsonOf } from "./exchange";
import { Deadlines } from "./deadlines";
import type { Gateway, OutgoingMessage, SendResult } from "./gateway";

export type SmscOptions = { login: string; password: string; sender: string | null; baseUrl: string; timeoutMs: number };

const permanent = new Set([1, 6, 7, 8]);

export class SmscGateway implements Gateway {
  readonly name = "smsc";
  private readonly url: string;
  private readonly deadlines: Deadlines;

  constructor(private readonly options: SmscOptions) {
    this.url = `${options.baseUrl.replace(/\/+$/, "")}/sys/send.php`;
    this.deadlines = new Deadlines(options.timeoutMs);
  }

  async send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    const answer = await exchange(
      this.url,
      {
        method: "POST",
        headers: formHeaders,
        body: form({
          login: this.options.login,
          psw: this.options.password,
          phones: message.phone,
          mes: message.text,
          id: String(message.id),
          sender: this.options.sender ?? undefined,
          charset: "utf-8",
          fmt: "3",
        }),
      },
      this.deadlines,
      signal,
    );
    return "outcome" in answer ? answer : smscResult(answer);
  }
}

function smscResult(answer: Answer): SendResult {
  if (answer.status !== 200) return { outcome: "retry", error: `gateway answered HTTP ${answer.status}` };
  const body = jsonOf(answer) as { id?: unknown; cnt?: unknown; error?: unknown; error_code?: unknown } | null;
  if (body && typeof body.error_code === "number") {
    const error = `SMSC ${body.error_code}: ${String(body.error ?? "").slice(0, 200)}`;
    return permanent.has(body.error_code) ? { outcome: "failed", error } : { outcome: "retry", error };
  }
  if (body && body.id !== undefined && typeof body.cnt === "number") return { outcome: "sent", providerId: String(body.id) };
  return { outcome: "retry", error: "gateway answered an unreadable body" };
}
