/**
 * One HTTP exchange with a provider's API, bounded as http.ts bounds the probe's: the timeout covers
 * the whole exchange, body included, the body is read up to maxAnswerBytes, and the shutdown signal
 * aborts it. Network errors, timeouts and
 * aborts come back as a retryable SendResult; an answer (any status) comes back as its status and
 * body text for the adapter to read by the provider's rules.
 */
import type { Deadlines } from "./deadlines";
import type { SendResult } from "./gateway";
import { maxAnswerBytes, readableAtOnce } from "./http";

export type Answer = { status: number; headers: Headers; body: string };

export async function exchange(
  url: string,
  init: { method: "POST"; headers: Record<string, string>; body: string },
  deadlines: Deadlines,
  signal?: AbortSignal,
): Promise<Answer | Extract<SendResult, { outcome: "retry" }>> {
  // The timeout and the shutdown abort, shared by the sends started within a few ms, and what a
  // failure means (deadlines.ts run).
  return deadlines.run(signal, async (deadline) => {
    const response = await fetch(url, { ...init, signal: deadline });
    return { status: response.status, headers: response.headers, body: await boundedText(response) };
  });
}

/**
 * The answer's text, at most maxAnswerBytes of it (the rest is cancelled, as http.ts does for the
 * probe): the providers answer a few hundred bytes of JSON, and an answer of 64 MiB to each of
 * SEND_CONCURRENCY sends must not be held whole. A cut-off answer is not JSON: the adapter reads
 * it as unreadable.
 */
async function boundedText(response: Response): Promise<string> {
  // A declared length within the bound is read at once (http.ts discardBody: no stream reader per send).
  if (readableAtOnce(response)) return response.text();
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    read += value.byteLength;
    if (read > maxAnswerBytes) {
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** The answer's body as JSON, or null when it is not JSON. */
export function jsonOf(answer: Answer): unknown {
  try {
    return JSON.parse(answer.body);
  } catch {
    return null;
  }
}

/** Form encoding (application/x-www-form-urlencoded), the format all three providers take. */
export function form(fields: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== "") params.set(key, value);
  return params.toString();
}

export const formHeaders = { "content-type": "application/x-www-form-urlencoded" };
