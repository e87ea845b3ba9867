/**
 * The app with its browser UI on a fresh database, and a tiny browser for `app.handle()`: it keeps
 * cookies, sends forms, and reads the CSRF token a page embeds.
 */
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import type { Config } from "../../src/config";
import type { Database } from "../../src/db/client";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { type Backend, freshDatabase } from "./db";
import type { Outbox } from "../../src/web/routes/outbox";
import type { OAuthEndpointOverrides } from "../../src/auth/oauth";
import type { Gateway } from "../../src/gateway/gateway";

export type WebReply = { status: number; headers: Headers; text: string };

export type WebApp = {
  database: Database;
  clock: FixedClock;
  handle(request: Request): Promise<Response>;
  close(): Promise<void>;
};

export async function webApp(
  backend: Backend,
  config: Partial<Pick<Config, "registration" | "publicUrl" | "oauth" | "adminEmails" | "adminApiKey">> = {},
  outbox: Outbox | null = null,
  oauthEndpoints?: OAuthEndpointOverrides,
  gateway: Gateway | null = null,
): Promise<WebApp> {
  const { database, drop } = await freshDatabase(backend);
  const clock = new FixedClock("2026-12-01T00:00:00Z");
  const app = await createApp({ config: { adminApiKey: null, ...config }, database, clock, logger: memoryLogger(), signals: silentSignals, outbox, oauthEndpoints, gateway });
  return { database, clock, handle: (request) => app.handle(request), close: drop };
}

export const origin = "http://localhost";

/** One browser: a cookie jar and helpers. Requests carry a same-origin Origin unless told otherwise. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(
    private readonly app: WebApp,
    private readonly defaults: Record<string, string> = {},
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  async send(method: string, path: string, init: { form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<WebReply> {
    const headers: Record<string, string> = { ...this.defaults, ...init.headers };
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader();
    if (method !== "GET" && !("origin" in headers)) headers.origin = origin;
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const response = await this.app.handle(new Request(`${origin}${path}`, { method, headers, body }));
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/Max-Age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  get(path: string, headers: Record<string, string> = {}) {
    return this.send("GET", path, { headers });
  }

  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    return this.send("POST", path, { form, headers });
  }

  /** The CSRF token embedded in a page this browser can see. */
  async csrf(path = "/tokens"): Promise<string> {
    const page = await this.get(path);
    const match = /name="_csrf" value="([0-9a-f]+)"/.exec(page.text);
    if (!match) throw new Error(`no CSRF token on ${path} (status ${page.status})`);
    return match[1]!;
  }

  async register(email: string, password = "correct horse battery") {
    return this.post("/register", { email, password });
  }
}
