/** Picks the gateway from the configuration: HTTP when PROVIDER_URL is set, else the sandbox. */
import type { Config } from "../config";
import type { Gateway } from "./gateway";
import { HttpGateway } from "./http";
import { SandboxGateway } from "./sandbox";

export function createGateway(config: Pick<Config, "providerUrl" | "providerToken" | "providerTimeoutMs" | "sandboxFailureRate">): Gateway {
  if (config.providerUrl) {
    return new HttpGateway({ baseUrl: config.providerUrl, token: config.providerToken, timeoutMs: config.providerTimeoutMs });
  }
  return new SandboxGateway({ failureRate: config.sandboxFailureRate });
}
