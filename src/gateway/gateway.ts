/**
 * The sending gateway (SPEC §7). A send ends in one of three ways; the dispatcher decides what each
 * means for the message (sent, retried later, failed for good). Adding a provider is one file with a
 * class implementing `Gateway` (see twilio.ts, smsru.ts, smsc.ts) and one line in select.ts.
 */
export type OutgoingMessage = { id: number; phone: string; text: string };

export type SendResult =
  /** `providerId`: the provider's own id of the message, which its delivery receipts name */
  | { outcome: "sent"; providerId?: string }
  | { outcome: "retry"; error: string }
  | { outcome: "failed"; error: string };

export interface Gateway {
  readonly name: string;
  send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult>;
}
