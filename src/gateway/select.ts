/**
 * Picks the gateway from the configuration (PROVIDER): the probe protocol of SPEC §7, the sandbox, or
 * a real provider's adapter. Each adapter's base URL is PROVIDER_URL when set (tests, self-hosted
 * proxies), else the provider's public API. A new provider: one file implementing `Gateway`, and
 * one case here.
 */
import type { Config } from "../config";
import type { Gateway } from "./gateway";
import { HttpGateway } from "./http";
import { SandboxGateway } from "./sandbox";
import { SmscGateway } from "./smsc";
import { SmsRuGateway } from "./smsru";
import { TwilioGateway } from "./twilio";

export const publicApis = {
  twilio: "https://api.twilio.com",
  smsru: "https://sms.ru",
  smsc: "https://smsc.ru",
} as const;

export type GatewayConfig = Pick<Config, "provider" | "providerUrl" | "providerToken" | "providerTimeoutMs" | "sandboxFailureRate" | "publicUrl">;

export function createGateway(config: GatewayConfig): Gateway {
  const { provider, providerTimeoutMs: timeoutMs } = config;
  switch (provider.name) {
    case "probe":
      return new HttpGateway({ baseUrl: config.providerUrl!, token: config.providerToken, timeoutMs });
    case "sandbox":
      return new SandboxGateway({ failureRate: config.sandboxFailureRate });
    case "twilio":
      return new TwilioGateway({
        ...provider,
        // Twilio posts delivery receipts here; without PUBLIC_URL it cannot be told where.
        statusCallback: config.publicUrl ? `${config.publicUrl.replace(/\/+$/, "")}/webhooks/twilio` : null,
        baseUrl: config.providerUrl ?? publicApis.twilio,
        timeoutMs,
      });
    case "smsru":
      return new SmsRuGateway({ ...provider, baseUrl: config.providerUrl ?? publicApis.smsru, timeoutMs });
    case "smsc":
      return new SmscGateway({ ...provider, baseUrl: config.providerUrl ?? publicApis.smsc, timeoutMs });
  }
}
