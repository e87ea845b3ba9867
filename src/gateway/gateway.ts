/**
 * The sending gateway (SPEC §7). A send ends in one of three ways; the dispatcher decides what each
 * means for the message (sent, retried later, failed for good).
 */
export type OutgoingMessage = { id: number; phone: string; text: string };

export type SendResult =
  | { outcome: "sent" }
  | { outcome: "retry"; error: string }
  | { outcome: "failed"; error: string };

export interface Gateway {
  readonly name: string;
  send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult>;
}
