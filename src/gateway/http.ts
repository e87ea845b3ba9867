/**
 * The HTTP gateway protocol (SPEC §7): `POST {PROVIDER_URL}/send/{id}` with a bearer token and
 * `{"id", "phone" (integer), "text"}`. Any 2xx is success; network errors, timeouts, 408, 429 and
 * 5xx are worth retrying; any other status is a permanent refusal. The timeout covers the whole
 * exchange, body included, so a gateway that hangs mid-answer cannot hold a send slot.
 */
import { Deadlines } from "./deadlines";
import { type Gateway, type OutgoingMessage, retryAfterMs, type SendResult } from "./gateway";

export type HttpGatewayOptions = { baseUrl: string; token: string; timeoutMs: number };

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/** Answers longer than this are cut off: the status is what counts. */
export const maxAnswerBytes = 64 * 1024;

/**
 * The answer declares a body of at most maxAnswerBytes that can be read at once. Not when it is
 * encoded (gzip, br, deflate, zstd): Content-Length then counts the encoded bytes and fetch decodes
 * them, so 421 bytes of br make 256 MiB.
 */
export function readableAtOnce(response: Response): boolean {
  const length = response.headers.get("content-length");
  return length !== null && Number(length) <= maxAnswerBytes && response.headers.get("content-encoding") === null;
}

/**
 * Reads the body to free the connection; its content does not matter (garbage is fine on 2xx).
 * Never held whole: a gateway answering 64 MiB to each of SEND_CONCURRENCY sends made
 * `arrayBuffer()` hold them all at once (issue 14 item 3); past maxAnswerBytes the rest is
 * cancelled (the connection is closed instead of reused). An answer that declares a length within
 * maxAnswerBytes, not encoded, is read at once: the body cannot be longer than its Content-Length, and a stream
 * reader per send cost more CPU than the rest of the HTTP client's work (bench/NOTES.md).
 */
async function discardBody(response: Response): Promise<void> {
  if (readableAtOnce(response)) {
    await response.arrayBuffer();
    return;
  }
  const reader = response.body?.getReader();
  if (!reader) return;
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    read += value.byteLength;
    if (read > maxAnswerBytes) {
      await reader.cancel().catch(() => {});
      return;
    }
  }
}

export class HttpGateway implements Gateway {
  readonly name = "http";
  private readonly base: string;
  /** one Headers for every send: fetch copies it (a plain object is converted anew each time) */
  private readonly headers: Headers;
  private readonly deadlines: Deadlines;

  constructor(private readonly options: HttpGatewayOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.headers = new Headers({ authorization: `Bearer ${options.token}`, "content-type": "application/json" });
    // The timeout and the shutdown abort, shared by the sends started within a few ms (deadlines.ts).
    // Not AbortSignal.timeout() and AbortSignal.any() per send: 59,391 live signals (18.6 MB of heap)
    // after 200k sends, RSS 277 MB (bench/suites/memory.ts).
    this.deadlines = new Deadlines(options.timeoutMs);
  }

  send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    return this.deadlines.run(signal, async (deadline): Promise<SendResult> => {
      const response = await fetch(`${this.base}/send/${message.id}`, {
        method: "POST",
        headers: this.headers,
        body: `{"id":${message.id},"phone":${message.phone},"text":${JSON.stringify(message.text)}}`,
        signal: deadline,
      });
      await discardBody(response);
      if (response.ok) return { outcome: "sent" };
      const error = `gateway answered HTTP ${response.status}`;
      if (response.status === 429) {
        const pause = retryAfterMs(response.headers.get("retry-after"), Date.now());
        return pause === undefined ? { outcome: "retry", error } : { outcome: "retry", error, retryAfterMs: pause };
      }
      return retryable(response.status) ? { outcome: "retry", error } : { outcome: "failed", error };
    });
  }
}
