/** README and .env.example stay true to the code: every variable documented with its real default. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../src/config";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (name: string) => readFileSync(root + name, "utf8");

/** The variable names config.ts reads: the first argument of every reader call. */
function variablesRead(): string[] {
  const source = read("src/config.ts");
  return [...new Set([...source.matchAll(/\(env, "([A-Z_]+)"/g)].map((m) => m[1]!))];
}

function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!.replace(/^"(.*)"$/, "$1");
  }
  return env;
}

describe("documentation", () => {
  test("config.ts reads the variables of SPEC §2", () => {
    expect(variablesRead().sort()).toEqual(
      [
        "PORT", "HOST", "DATABASE_URL", "DATA_DIR", "PROVIDER_URL", "PROVIDER_TOKEN", "PROVIDER_TIMEOUT_MS",
        "SANDBOX_FAILURE_RATE", "SEND_CONCURRENCY", "GATEWAY_CONCURRENCY", "CLAIM_BATCH", "TICK", "RETRY_DELAY_SECONDS", "LEASE_SECONDS", "DB_CONNECT_TIMEOUT_MS", "DB_STATEMENT_TIMEOUT_MS", "DB_REQUEST_TIMEOUT_MS", "ADMIN_API_KEY",
        "REGISTRATION", "PUBLIC_URL", "ADMIN_EMAILS", "WORKER", "LOG_LEVEL", "METRICS_TOKEN", "SMTP_URL", "REPORT_CRON",
        "REPORT_TIMEZONE", "REPORT_FROM", "OAUTH_GITHUB_CLIENT_ID", "OAUTH_GITHUB_CLIENT_SECRET", "OAUTH_GOOGLE_CLIENT_ID",
        "OAUTH_GOOGLE_CLIENT_SECRET", "OAUTH_OIDC_ISSUER", "OAUTH_OIDC_CLIENT_ID", "OAUTH_OIDC_CLIENT_SECRET",
        "PROVIDER", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
        "SMSRU_API_ID", "SMSRU_FROM", "SMSC_LOGIN", "SMSC_PASSWORD", "SMSC_SENDER", "WEBHOOK_TOKEN", "PROVIDER_RATE", "PROVIDER_BURST", "HEAP_STATS_FILE",
      ].sort(),
    );
  });

  test(".env.example lists every variable, and its values are exactly the defaults", () => {
    const env = parseEnvFile(read(".env.example"));
    for (const name of variablesRead()) expect(Object.keys(env), name).toContain(name);
    expect(Object.keys(env).some((k) => k.startsWith("OAUTH_"))).toBe(true);
    expect(loadConfig(env)).toEqual(loadConfig({}));
  });

  test("README starts with the two commands and documents every variable with its default", () => {
    const readme = read("README.md");
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(firstBlock).toContain("bun install && bun run start");
    expect(firstBlock).toContain("bun test");
    const defaults = loadConfig({});
    const shown: Record<string, string> = {
      PORT: String(defaults.port),
      HOST: defaults.host,
      DATA_DIR: defaults.dataDir,
      PROVIDER_TIMEOUT_MS: String(defaults.providerTimeoutMs),
      SANDBOX_FAILURE_RATE: String(defaults.sandboxFailureRate),
      SEND_CONCURRENCY: String(defaults.sendConcurrency),
      CLAIM_BATCH: String(defaults.claimBatch),
      TICK: defaults.tick,
      RETRY_DELAY_SECONDS: String(defaults.retryDelaySeconds),
      LEASE_SECONDS: String(defaults.leaseSeconds),
      DB_CONNECT_TIMEOUT_MS: String(defaults.dbConnectTimeoutMs),
      DB_STATEMENT_TIMEOUT_MS: String(defaults.dbStatementTimeoutMs),
      REGISTRATION: defaults.registration,
      WORKER: defaults.worker ? "1" : "0",
      LOG_LEVEL: defaults.logLevel,
      REPORT_CRON: defaults.reportCron,
    };
    for (const name of variablesRead()) {
      const row = readme.split("\n").find((line) => line.startsWith(`| \`${name}\``));
      expect(row, name).toBeDefined();
      if (shown[name] !== undefined) expect(row!, name).toContain(`\`${shown[name]}\``);
    }
  });
});
