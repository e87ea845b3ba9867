/**
 * Reads and validates the environment once. Nothing else in the code reads `process.env`.
 * An empty value counts as unset (SPEC §2). A bad value throws a ConfigError whose message is one
 * line naming the variable, which `main.ts` prints before exiting.
 */
import { Cron } from "croner";

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | null;
  dataDir: string;
  /** the adapter sends go through (PROVIDER) and its credentials */
  provider: ProviderConfig;
  /** the probe's or an adapter's base URL (PROVIDER_URL); null: the adapter's public API */
  providerUrl: string | null;
  providerToken: string;
  /** the secret path segment of the SMS.ru and SMSC.ru receipt webhooks; null: those are off */
  webhookToken: string | null;
  providerTimeoutMs: number;
  /** PROVIDER_RATE, PROVIDER_BURST: the send-rate cap across all processes; null: none */
  providerRate: { perSecond: number; burst: number } | null;
  /** share of sandbox sends that fail (retryably), for demos; 0 with a real gateway */
  sandboxFailureRate: number;
  sendConcurrency: number;
  /** HTTP requests to the gateway at once per process, at most sendConcurrency */
  gatewayConcurrency: number;
  claimBatch: number;
  tick: string;
  retryDelaySeconds: number;
  leaseSeconds: number;
  /** how long a database connection attempt may take (PostgreSQL) */
  dbConnectTimeoutMs: number;
  /** how long PostgreSQL runs one statement (or idles in a transaction) before giving up itself */
  dbStatementTimeoutMs: number;
  /** how long one request's database work may take in all, pool waits included (PostgreSQL) */
  dbRequestTimeoutMs: number;
  adminApiKey: string | null;
  registration: "open" | "closed";
  /** the address users reach (PUBLIC_URL); null: the address each request came to */
  publicUrl: string | null;
  adminEmails: string[];
  /** OAuth2 sign-in providers of the web UI; null: not configured, no button */
  oauth: OAuthConfig;
  worker: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
  metricsToken: string | null;
  smtpUrl: string | null;
  reportCron: string;
  /** the zone REPORT_CRON is read in and whose calendar day the report covers */
  reportTimezone: string;
  /** the daily report's From address */
  reportFrom: string;
  /** HEAP_STATS_FILE: a diagnostic (ops/heap-stats.ts): SIGUSR2 appends memory figures here; null: off */
  heapStatsFile: string | null;
};

export type OAuthClientConfig = { clientId: string; clientSecret: string };
export type OAuthConfig = {
  github: OAuthClientConfig | null;
  google: OAuthClientConfig | null;
  oidc: (OAuthClientConfig & { issuer: string }) | null;
};

export const providerNames = ["probe", "sandbox", "twilio", "smsru", "smsc"] as const;

export type ProviderConfig =
  | { name: "probe" | "sandbox" }
  | { name: "twilio"; accountSid: string; authToken: string; from: string }
  | { name: "smsru"; apiId: string; from: string | null }
  | { name: "smsc"; login: string; password: string; sender: string | null };

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | null {
  const value = env[name];
  return value === undefined || value.trim() === "" ? null : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function fraction(env: Env, name: string, fallback: number): number {
  const raw = read(env, name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || value > 1) throw new ConfigError(name, `must be a number from 0 to 1, got "${raw}"`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = read(env, name);
  if (raw === null) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: string[]): string | null {
  const raw = read(env, name);
  if (raw === null) return null;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, "is not a valid URL");
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`);
  }
  return raw;
}

function cronPattern(env: Env, name: string, fallback: string): string {
  const pattern = read(env, name) ?? fallback;
  try {
    new Cron(pattern, { paused: true }).stop();
  } catch (error) {
    throw new ConfigError(name, `is not a valid cron pattern (${(error as Error).message})`);
  }
  return pattern;
}

function timezone(env: Env, name: string, fallback: string): string {
  const zone = read(env, name) ?? fallback;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
  } catch {
    throw new ConfigError(name, `is not a known IANA time zone, got "${zone}"`);
  }
  return zone;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === null) return fallback;
  if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
  throw new ConfigError(name, `must be 0 or 1, got "${raw}"`);
}

/** A provider's id and secret: both or neither (one alone is a mistake worth stopping for). */
function oauthClient(clientId: [string, string | null], clientSecret: [string, string | null]): OAuthClientConfig | null {
  const [idName, id] = clientId;
  const [secretName, secret] = clientSecret;
  if (id === null && secret === null) return null;
  if (id === null) throw new ConfigError(idName, `is required when ${secretName} is set`);
  if (secret === null) throw new ConfigError(secretName, `is required when ${idName} is set`);
  return { clientId: id, clientSecret: secret };
}

function oauthConfig(env: Env): OAuthConfig {
  const issuer = url(env, "OAUTH_OIDC_ISSUER", ["http:", "https:"]);
  const oidc = oauthClient(["OAUTH_OIDC_CLIENT_ID", read(env, "OAUTH_OIDC_CLIENT_ID")], ["OAUTH_OIDC_CLIENT_SECRET", read(env, "OAUTH_OIDC_CLIENT_SECRET")]);
  if (oidc && !issuer) throw new ConfigError("OAUTH_OIDC_ISSUER", "is required when OAUTH_OIDC_CLIENT_ID is set");
  if (issuer && !oidc) throw new ConfigError("OAUTH_OIDC_CLIENT_ID", "is required when OAUTH_OIDC_ISSUER is set");
  return {
    github: oauthClient(["OAUTH_GITHUB_CLIENT_ID", read(env, "OAUTH_GITHUB_CLIENT_ID")], ["OAUTH_GITHUB_CLIENT_SECRET", read(env, "OAUTH_GITHUB_CLIENT_SECRET")]),
    google: oauthClient(["OAUTH_GOOGLE_CLIENT_ID", read(env, "OAUTH_GOOGLE_CLIENT_ID")], ["OAUTH_GOOGLE_CLIENT_SECRET", read(env, "OAUTH_GOOGLE_CLIENT_SECRET")]),
    oidc: oidc && issuer ? { ...oidc, issuer: issuer.replace(/\/+$/, "") } : null,
  };
}

function required(env: Env, name: string, provider: string): string {
  const value = read(env, name);
  if (value === null) throw new ConfigError(name, `must be set when PROVIDER=${provider}`);
  return value;
}

/** PROVIDER and the credentials of the adapter it names (README "Sending through a real provider"). */
function providerConfig(env: Env, providerUrl: string | null): ProviderConfig {
  const name = oneOf(env, "PROVIDER", providerUrl ? "probe" : "sandbox", providerNames);
  switch (name) {
    case "probe":
      if (!providerUrl) throw new ConfigError("PROVIDER_URL", "must be set when PROVIDER=probe");
      return { name };
    case "sandbox":
      return { name };
    case "twilio": {
      const accountSid = required(env, "TWILIO_ACCOUNT_SID", name);
      if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) throw new ConfigError("TWILIO_ACCOUNT_SID", "must be AC followed by 32 hexadecimal digits");
      const from = required(env, "TWILIO_FROM", name);
      if (!/^(\+\d{6,15}|MG[0-9a-fA-F]{32}|[A-Za-z0-9 ]{1,11})$/.test(from)) {
        throw new ConfigError("TWILIO_FROM", "must be an E.164 number (+15005550006), a messaging service SID (MG…) or an alphanumeric sender ID");
      }
      return { name, accountSid, authToken: required(env, "TWILIO_AUTH_TOKEN", name), from };
    }
    case "smsru":
      return { name, apiId: required(env, "SMSRU_API_ID", name), from: read(env, "SMSRU_FROM") };
    case "smsc":
      return { name, login: required(env, "SMSC_LOGIN", name), password: required(env, "SMSC_PASSWORD", name), sender: read(env, "SMSC_SENDER") };
  }
}

function rateOf(env: Env): Config["providerRate"] {
  const perSecond = integer(env, "PROVIDER_RATE", 0, 0, 100_000);
  const burst = integer(env, "PROVIDER_BURST", Math.max(1, perSecond), 1, 1_000_000);
  return perSecond === 0 ? null : { perSecond, burst };
}

function webhookToken(env: Env): string | null {
  const token = read(env, "WEBHOOK_TOKEN");
  if (token !== null && !/^[A-Za-z0-9_-]{16,}$/.test(token)) {
    throw new ConfigError("WEBHOOK_TOKEN", "must be at least 16 letters, digits, - or _ (it is a path segment and a secret)");
  }
  return token;
}

/**
 * The defaults, for a gateway that answers fast (issue 16): 300 send slots, 64 HTTP requests at
 * once. Bun's fetch keeps at most 64 idle connections per process: up to 64 requests at once reuse
 * their connections, while past that each request over the 64 opens a new one (measured: 20,000
 * requests at 100 in flight opened 3,505 connections, at 64 in flight 64), which costs the service
 * and the gateway CPU. The slots beyond the requests are messages whose send is done and whose
 * result waits for its group commit. Set SEND_CONCURRENCY (GATEWAY_CONCURRENCY then follows it)
 * for a gateway with latency: sends/s ≈ requests in flight ÷ latency (README).
 */
export const defaultSendConcurrency = 300;
export const defaultGatewayConcurrency = 64;

/** Builds the validated configuration from an environment (default: the process's). */
export function loadConfig(env: Env = process.env): Config {
  const sendConcurrency = integer(env, "SEND_CONCURRENCY", defaultSendConcurrency, 1, 10_000);
  // Unset: the requests SEND_CONCURRENCY was sized for, or with both unset the fast-gateway pair.
  const gatewayDefault = read(env, "SEND_CONCURRENCY") === null ? defaultGatewayConcurrency : sendConcurrency;
  const gatewayConcurrency = integer(env, "GATEWAY_CONCURRENCY", gatewayDefault, 1, 10_000);
  if (gatewayConcurrency > sendConcurrency) {
    throw new ConfigError("GATEWAY_CONCURRENCY", `must be at most SEND_CONCURRENCY (${sendConcurrency}), got ${gatewayConcurrency}`);
  }
  // A send that can outlive its claim's lease could be claimed and sent by a second process.
  const providerTimeoutMs = integer(env, "PROVIDER_TIMEOUT_MS", 10_000, 1, 600_000);
  const leaseSeconds = integer(env, "LEASE_SECONDS", 60, 1, 86_400);
  const dbStatementTimeoutMs = integer(env, "DB_STATEMENT_TIMEOUT_MS", 30_000, 100, 3_600_000);
  if (providerTimeoutMs * 2 > leaseSeconds * 1000) {
    throw new ConfigError("PROVIDER_TIMEOUT_MS", `must be at most half of LEASE_SECONDS (${leaseSeconds} s), got ${providerTimeoutMs} ms`);
  }
  const providerUrl = url(env, "PROVIDER_URL", ["http:", "https:"]);
  return {
    port: integer(env, "PORT", 3000, 0, 65535),
    host: read(env, "HOST") ?? "0.0.0.0",
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    dataDir: read(env, "DATA_DIR") ?? "./data",
    provider: providerConfig(env, providerUrl),
    providerUrl,
    providerToken: read(env, "PROVIDER_TOKEN") ?? "",
    webhookToken: webhookToken(env),
    providerTimeoutMs,
    providerRate: rateOf(env),
    sandboxFailureRate: fraction(env, "SANDBOX_FAILURE_RATE", 0),
    sendConcurrency,
    gatewayConcurrency,
    claimBatch: integer(env, "CLAIM_BATCH", 500, 1, 50_000),
    tick: cronPattern(env, "TICK", "* * * * * *"),
    retryDelaySeconds: integer(env, "RETRY_DELAY_SECONDS", 300, 0, 30 * 86_400),
    leaseSeconds,
    dbConnectTimeoutMs: integer(env, "DB_CONNECT_TIMEOUT_MS", 2_000, 100, 600_000),
    dbStatementTimeoutMs,
    // Defaults to the statement timeout, so that a request's one long statement (a big mailing's
    // planning) is not cut shorter than the server itself would cut it.
    dbRequestTimeoutMs: integer(env, "DB_REQUEST_TIMEOUT_MS", dbStatementTimeoutMs, 100, 3_600_000),
    adminApiKey: read(env, "ADMIN_API_KEY"),
    registration: oneOf(env, "REGISTRATION", "open", ["open", "closed"] as const),
    publicUrl: url(env, "PUBLIC_URL", ["http:", "https:"]),
    adminEmails: (read(env, "ADMIN_EMAILS") ?? "")
      .split(",")
      .map((e) => e.trim().toLowerCase())
      .filter(Boolean),
    oauth: oauthConfig(env),
    worker: flag(env, "WORKER", true),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const),
    metricsToken: read(env, "METRICS_TOKEN"),
    smtpUrl: url(env, "SMTP_URL", ["smtp:", "smtps:"]),
    reportCron: cronPattern(env, "REPORT_CRON", "0 8 * * *"),
    reportTimezone: timezone(env, "REPORT_TIMEZONE", "UTC"),
    reportFrom: read(env, "REPORT_FROM") ?? "notification-service@localhost",
    heapStatsFile: read(env, "HEAP_STATS_FILE"),
  };
}
