/**
 * Reading each provider's delivery callback into receipts (issue 15 item 2), as its documentation
 * describes it. Pure functions of the request's fields; routes.ts checks the proof of origin.
 *
 * - Twilio: form fields `MessageSid`, `MessageStatus` (queued, sent, delivered, undelivered,
 *   failed, …) and `ErrorCode`; signed with `X-Twilio-Signature` = base64(HMAC-SHA1(auth token,
 *   the full URL + every field name and value, sorted by name)).
 * - SMS.ru: form fields `data[0]`, `data[1]`, … each `sms_status\n{sms_id}\n{status}\n{unix time}`;
 *   103 delivered; 104 lifetime expired, 105 deleted by the operator, 106 phone failure, 107 unknown
 *   reason, 108 rejected, 150 no route → undelivered. The caller must answer `100`.
 * - SMSC.ru: fields `id`, `phone`, `status`, `err`; 1 delivered, 2 read; 3 expired, 20 cannot be
 *   delivered, 22 invalid number, 23 forbidden, 24 no money, 25 unavailable → undelivered.
 * Intermediate statuses (queued, in transit) are not receipts: they change nothing.
 */
import { createHmac } from "node:crypto";
import type { Receipt } from "../dispatch/receipts";
import { constantTimeEqual } from "../auth/crypto";

export function twilioSignature(authToken: string, url: string, fields: URLSearchParams): string {
  const data = url + [...fields.keys()].sort().map((key) => key + fields.getAll(key).join("")).join("");
  return createHmac("sha1", authToken).update(data, "utf8").digest("base64");
}

export function twilioSignatureValid(authToken: string, url: string, fields: URLSearchParams, signature: string | null): boolean {
  return signature !== null && constantTimeEqual(twilioSignature(authToken, url, fields), signature);
}

export function twilioReceipts(fields: URLSearchParams): Receipt[] {
  const sid = fields.get("MessageSid") ?? fields.get("SmsSid");
  const status = fields.get("MessageStatus") ?? fields.get("SmsStatus");
  if (!sid) return [];
  const providerMessageId = `twilio:${sid}`;
  if (status === "delivered") return [{ providerMessageId, status: "delivered", reason: null }];
  if (status === "undelivered" || status === "failed") {
    const code = fields.get("ErrorCode");
    return [{ providerMessageId, status: "undelivered", reason: `Twilio ${status}${code ? ` (error ${code})` : ""}` }];
  }
  return [];
}

const smsRuFailures: Record<string, string> = {
  "104": "lifetime expired",
  "105": "deleted by the operator",
  "106": "phone failure",
  "107": "unknown reason",
  "108": "rejected",
  "150": "no route to the number",
};

export function smsRuReceipts(fields: URLSearchParams): Receipt[] {
  const receipts: Receipt[] = [];
  for (const [key, value] of fields) {
    if (!/^data\[\d*\]$/.test(key)) continue;
    const [kind, id, status] = value.split("\n").map((line) => line.trim());
    if (kind !== "sms_status" || !id) continue;
    const providerMessageId = `smsru:${id}`;
    if (status === "103") receipts.push({ providerMessageId, status: "delivered", reason: null });
    else if (status && smsRuFailures[status]) receipts.push({ providerMessageId, status: "undelivered", reason: `SMS.ru ${status}: ${smsRuFailures[status]}` });
  }
  return receipts;
}

const smscFailures: Record<string, string> = {
  "3": "expired",
  "20": "cannot be delivered",
  "22": "invalid number",
  "23": "forbidden",
  "24": "no money",
  "25": "number unavailable",
};

export function smscReceipts(fields: URLSearchParams): Receipt[] {
  const id = fields.get("id");
  const status = fields.get("status");
  if (!id || !status) return [];
  const providerMessageId = `smsc:${id}`;
  if (status === "1" || status === "2") return [{ providerMessageId, status: "delivered", reason: null }];
  if (smscFailures[status]) {
    const err = fields.get("err");
    return [{ providerMessageId, status: "undelivered", reason: `SMSC ${status}: ${smscFailures[status]}${err && err !== "0" ? ` (error ${err})` : ""}` }];
  }
  return [];
}
