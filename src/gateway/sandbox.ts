/**
 * The built-in `sandbox` provider, used when PROVIDER_URL is unset (SPEC §2): delivers at once,
 * remembers the last messages it sent, and fails a chosen share of sends (retryably) for demos.
 */
import type { Gateway, OutgoingMessage, SendResult } from "./gateway";

export class SandboxGateway implements Gateway {
  readonly name = "sandbox";
  /** The most recent sends, newest last, at most `keep`. */
  readonly sent: OutgoingMessage[] = [];
  total = 0;

  constructor(
    private readonly options: { failureRate?: number; keep?: number; random?: () => number } = {},
  ) {}

  async send(message: OutgoingMessage): Promise<SendResult> {
    const random = this.options.random ?? Math.random;
    if ((this.options.failureRate ?? 0) > 0 && random() < this.options.failureRate!) {
      return { outcome: "retry", error: "sandbox: simulated failure" };
    }
    this.total++;
    this.sent.push(message);
    const keep = this.options.keep ?? 1000;
    if (this.sent.length > keep) this.sent.splice(0, this.sent.length - keep);
    return { outcome: "sent" };
  }
}
