/** SPEC §2: configuration is read once, validated, and a bad value names its variable. */
import { describe, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../../src/config";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("§2 configuration", () => {
  test("an empty environment gives every default of the table", () => {
    expect(loadConfig({})).toEqual({
      port: 3000,
      host: "0.0.0.0",
      databaseUrl: null,
      dataDir: "./data",
      provider: { name: "sandbox" },
      providerUrl: null,
      providerToken: "",
      webhookToken: null,
      providerTimeoutMs: 10_000,
      providerRate: null,
      sandboxFailureRate: 0,
      sendConcurrency: 300,
      gatewayConcurrency: 64,
      claimBatch: 500,
      tick: "* * * * * *",
      retryDelaySeconds: 300,
      leaseSeconds: 60,
      dbConnectTimeoutMs: 2000,
      dbStatementTimeoutMs: 30_000,
      dbRequestTimeoutMs: 30_000,
      adminApiKey: null,
      registration: "open",
      publicUrl: null,
      adminEmails: [],
      oauth: { github: null, google: null, oidc: null },
      worker: true,
      logLevel: "info",
      metricsToken: null,
      smtpUrl: null,
      reportCron: "0 8 * * *",
      reportTimezone: "UTC",
      reportFrom: "notification-service@localhost",
      heapStatsFile: null,
    });
  });

  test("an empty or blank value counts as unset", () => {
    const config = loadConfig({
      PORT: "",
      HOST: " ",
      DATABASE_URL: "",
      DATA_DIR: "",
      PROVIDER_URL: "",
      SEND_CONCURRENCY: "",
      TICK: "",
      ADMIN_API_KEY: "",
      REGISTRATION: "",
      WORKER: "",
      LOG_LEVEL: "",
      SMTP_URL: "",
    });
    expect(config).toEqual(loadConfig({}));
  });

  test("valid values are read", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "127.0.0.1",
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/postgres",
      DATA_DIR: "/tmp/nst",
      PROVIDER_URL: "https://gateway.example/v1",
      PROVIDER_TOKEN: "secret",
      PROVIDER_TIMEOUT_MS: "2500",
      SEND_CONCURRENCY: "7",
      GATEWAY_CONCURRENCY: "3",
      CLAIM_BATCH: "50",
      TICK: "*/5 * * * * *",
      RETRY_DELAY_SECONDS: "0",
      LEASE_SECONDS: "30",
      ADMIN_API_KEY: "key",
      REGISTRATION: "closed",
      ADMIN_EMAILS: "A@example.com, b@example.com ,",
      OAUTH_GITHUB_CLIENT_ID: "gh-id",
      OAUTH_GITHUB_CLIENT_SECRET: "gh-secret",
      OAUTH_OIDC_ISSUER: "https://sso.example/realms/x/",
      OAUTH_OIDC_CLIENT_ID: "oidc-id",
      OAUTH_OIDC_CLIENT_SECRET: "oidc-secret",
      WORKER: "0",
      LOG_LEVEL: "debug",
      METRICS_TOKEN: "m",
      SMTP_URL: "smtp://mail.example:25",
      REPORT_CRON: "0 9 * * 1",
      REPORT_TIMEZONE: "Europe/Moscow",
      REPORT_FROM: "reports@example.com",
      HEAP_STATS_FILE: "/tmp/heap.jsonl",
    });
    expect(config).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      databaseUrl: "postgres://postgres@127.0.0.1:5432/postgres",
      dataDir: "/tmp/nst",
      providerUrl: "https://gateway.example/v1",
      providerToken: "secret",
      providerTimeoutMs: 2500,
      sendConcurrency: 7,
      gatewayConcurrency: 3,
      claimBatch: 50,
      tick: "*/5 * * * * *",
      retryDelaySeconds: 0,
      leaseSeconds: 30,
      adminApiKey: "key",
      registration: "closed",
      adminEmails: ["a@example.com", "b@example.com"],
      oauth: {
        github: { clientId: "gh-id", clientSecret: "gh-secret" },
        google: null,
        oidc: { issuer: "https://sso.example/realms/x", clientId: "oidc-id", clientSecret: "oidc-secret" },
      },
      worker: false,
      logLevel: "debug",
      metricsToken: "m",
      smtpUrl: "smtp://mail.example:25",
      reportCron: "0 9 * * 1",
      reportTimezone: "Europe/Moscow",
      reportFrom: "reports@example.com",
      heapStatsFile: "/tmp/heap.jsonl",
    });
  });

  test("an OAuth client id without its secret (or an OIDC client without its issuer) stops the start, naming the variable", () => {
    expect(configError({ OAUTH_GITHUB_CLIENT_ID: "x" }).message).toBe("OAUTH_GITHUB_CLIENT_SECRET: is required when OAUTH_GITHUB_CLIENT_ID is set");
    expect(configError({ OAUTH_GOOGLE_CLIENT_SECRET: "x" }).variable).toBe("OAUTH_GOOGLE_CLIENT_ID");
    expect(configError({ OAUTH_OIDC_CLIENT_ID: "x", OAUTH_OIDC_CLIENT_SECRET: "y" }).variable).toBe("OAUTH_OIDC_ISSUER");
    expect(configError({ OAUTH_OIDC_ISSUER: "ftp://x" }).variable).toBe("OAUTH_OIDC_ISSUER");
  });

  test("DB_REQUEST_TIMEOUT_MS defaults to DB_STATEMENT_TIMEOUT_MS (a request's one long statement is not cut shorter)", () => {
    expect(loadConfig({ DB_STATEMENT_TIMEOUT_MS: "90000" }).dbRequestTimeoutMs).toBe(90_000);
    expect(loadConfig({ DB_STATEMENT_TIMEOUT_MS: "90000", DB_REQUEST_TIMEOUT_MS: "5000" })).toMatchObject({ dbStatementTimeoutMs: 90_000, dbRequestTimeoutMs: 5_000 });
  });

  test("with neither set: 300 slots and 64 requests (issue 16); GATEWAY_CONCURRENCY follows a SEND_CONCURRENCY that is set", () => {
    expect(loadConfig({})).toMatchObject({ sendConcurrency: 300, gatewayConcurrency: 64 });
    expect(loadConfig({ SEND_CONCURRENCY: "2000" }).gatewayConcurrency).toBe(2000);
    expect(loadConfig({ SEND_CONCURRENCY: "10" }).gatewayConcurrency).toBe(10);
    expect(loadConfig({ SEND_CONCURRENCY: "300" }).gatewayConcurrency).toBe(300);
    expect(loadConfig({ SEND_CONCURRENCY: "300", GATEWAY_CONCURRENCY: "50" })).toMatchObject({ sendConcurrency: 300, gatewayConcurrency: 50 });
  });

  test("PROVIDER_TIMEOUT_MS may be at most half of LEASE_SECONDS (a send must not outlive its claim)", () => {
    expect(loadConfig({ LEASE_SECONDS: "20" })).toMatchObject({ leaseSeconds: 20, providerTimeoutMs: 10_000 });
    expect(loadConfig({ LEASE_SECONDS: "3", PROVIDER_TIMEOUT_MS: "1500" })).toMatchObject({ leaseSeconds: 3, providerTimeoutMs: 1500 });
    for (const env of [{ LEASE_SECONDS: "19" }, { LEASE_SECONDS: "3", PROVIDER_TIMEOUT_MS: "1501" }] as Record<string, string>[]) {
      const error = configError(env);
      expect(error.variable).toBe("PROVIDER_TIMEOUT_MS");
      expect(error.message).toContain("half of LEASE_SECONDS");
    }
  });

  test("PROVIDER: probe when PROVIDER_URL is set, else sandbox; adapters read their credentials", () => {
    expect(loadConfig({}).provider).toEqual({ name: "sandbox" });
    expect(loadConfig({ PROVIDER_URL: "http://127.0.0.1:4010" }).provider).toEqual({ name: "probe" });
    const sid = `AC${"a".repeat(32)}`;
    expect(loadConfig({ PROVIDER: "twilio", TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: "t", TWILIO_FROM: "+15005550006" }).provider)
      .toEqual({ name: "twilio", accountSid: sid, authToken: "t", from: "+15005550006" });
    expect(loadConfig({ PROVIDER: "smsru", SMSRU_API_ID: "k" }).provider).toEqual({ name: "smsru", apiId: "k", from: null });
    expect(loadConfig({ PROVIDER: "smsc", SMSC_LOGIN: "l", SMSC_PASSWORD: "p", SMSC_SENDER: "Shop" }).provider)
      .toEqual({ name: "smsc", login: "l", password: "p", sender: "Shop" });
  });

  test("an adapter without its credentials, or probe without PROVIDER_URL, names the missing variable", () => {
    const cases: [Record<string, string>, string][] = [
      [{ PROVIDER: "probe" }, "PROVIDER_URL"],
      [{ PROVIDER: "twilio", TWILIO_AUTH_TOKEN: "t", TWILIO_FROM: "+15005550006" }, "TWILIO_ACCOUNT_SID"],
      [{ PROVIDER: "twilio", TWILIO_ACCOUNT_SID: "AC1", TWILIO_AUTH_TOKEN: "t", TWILIO_FROM: "+1500" }, "TWILIO_ACCOUNT_SID"],
      [{ PROVIDER: "twilio", TWILIO_ACCOUNT_SID: `AC${"0".repeat(32)}`, TWILIO_FROM: "+15005550006" }, "TWILIO_AUTH_TOKEN"],
      [{ PROVIDER: "twilio", TWILIO_ACCOUNT_SID: `AC${"0".repeat(32)}`, TWILIO_AUTH_TOKEN: "t", TWILIO_FROM: "+1-500" }, "TWILIO_FROM"],
      [{ PROVIDER: "smsru" }, "SMSRU_API_ID"],
      [{ PROVIDER: "smsc", SMSC_LOGIN: "l" }, "SMSC_PASSWORD"],
      [{ PROVIDER: "nexmo" }, "PROVIDER"],
    ];
    for (const [env, variable] of cases) expect(configError(env).variable, JSON.stringify(env)).toBe(variable);
    expect(configError({ PROVIDER: "twilio", TWILIO_ACCOUNT_SID: `AC${"0".repeat(32)}`, TWILIO_AUTH_TOKEN: "hunter2", TWILIO_FROM: "bad-sender!" }).message)
      .not.toContain("hunter2");
  });

  test("PROVIDER_RATE and PROVIDER_BURST: no cap by default; the burst defaults to the rate", () => {
    expect(loadConfig({}).providerRate).toBeNull();
    expect(loadConfig({ PROVIDER_RATE: "200" }).providerRate).toEqual({ perSecond: 200, burst: 200 });
    expect(loadConfig({ PROVIDER_RATE: "200", PROVIDER_BURST: "10" }).providerRate).toEqual({ perSecond: 200, burst: 10 });
    expect(configError({ PROVIDER_RATE: "fast" }).variable).toBe("PROVIDER_RATE");
    expect(configError({ PROVIDER_RATE: "10", PROVIDER_BURST: "0" }).variable).toBe("PROVIDER_BURST");
  });

  const bad: [string, string][] = [
    ["PORT", "abc"],
    ["PORT", "3000abc"],
    ["PORT", "-1"],
    ["PORT", "70000"],
    ["SEND_CONCURRENCY", "0"],
    ["SEND_CONCURRENCY", "1.5"],
    ["GATEWAY_CONCURRENCY", "0"],
    ["GATEWAY_CONCURRENCY", "301"],
    ["CLAIM_BATCH", "0"],
    ["LEASE_SECONDS", "0"],
    ["PROVIDER_TIMEOUT_MS", "ten"],
    ["RETRY_DELAY_SECONDS", "-5"],
    ["DB_REQUEST_TIMEOUT_MS", "50"],
    ["DATABASE_URL", "not a url"],
    ["DATABASE_URL", "mysql://root@localhost/db"],
    ["DATABASE_URL", "127.0.0.1:5432/postgres"],
    ["PROVIDER_URL", "ftp://gateway"],
    ["SMTP_URL", "http://mail"],
    ["TICK", "every second"],
    ["REPORT_CRON", "99 * * *"],
    ["REPORT_TIMEZONE", "Mars/Olympus"],
    ["REGISTRATION", "maybe"],
    ["WORKER", "2"],
    ["LOG_LEVEL", "loud"],
    ["SANDBOX_FAILURE_RATE", "1.5"],
    ["SANDBOX_FAILURE_RATE", "-0.1"],
    ["SANDBOX_FAILURE_RATE", "half"],
  ];
  for (const [variable, value] of bad) {
    test(`${variable}=${value} throws a ConfigError naming ${variable}`, () => {
      const error = configError({ [variable]: value });
      expect(error.variable).toBe(variable);
      expect(error.message.startsWith(`${variable}: `)).toBe(true);
      expect(error.message).not.toContain("\n");
    });
  }

  test("a malformed DATABASE_URL is not echoed (it may hold a password)", () => {
    const error = configError({ DATABASE_URL: "postgres//user:hunter2@db" });
    expect(error.variable).toBe("DATABASE_URL");
    expect(error.message).not.toContain("hunter2");
  });
});

describe("§2 start-up with a bad value", () => {
  test("bun src/main.ts with PORT=abc exits non-zero with one line naming PORT", async () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PORT: "abc" };
    const child = Bun.spawn(["bun", "src/main.ts"], { cwd: root, env, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => child.kill(), 30_000);
    const [code, stdout, stderr] = await Promise.all([
      child.exited,
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]);
    clearTimeout(timer);
    expect(code).not.toBe(0);
    const lines = (stdout + stderr).split("\n").filter((line) => line.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("PORT");
    expect(lines[0]).toContain("abc");
  });
});
