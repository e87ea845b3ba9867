/**
 * The sending gateway (SPEC §7). A send ends in one of three ways; the dispatcher decides what each
 * means for the message (sent, retried later, failed for good). Adding a provider is one file with a
 * class implementing `Gateway` (see twilio.ts, smsru.ts, smsc.ts) and one line in select.ts.
 */
export type OutgoingMessage = { id: number; phone: string; text: string };

export type SendResult =
  /** `providerId`: the provider's own id of the message, which its delivery receipts name */
  | { outcome: "sent"; providerId?: string }
  /** `retryAfterMs`: the provider asked for a pause (429 Retry-After); the whole service waits that long */
  | { outcome: "retry"; error: string; retryAfterMs?: number }
  | { outcome: "failed"; error: string };

export interface Gateway {
  readonly name: string;
  send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult>;
}

/** A Retry-After header (seconds, or an HTTP date) in ms from `nowMs`; undefined if absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Math.min(Number(header.trim()), 3600) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - nowMs), 3_600_000);
}
