/**
 * GET /metrics (SPEC §10): the Prometheus text. With METRICS_TOKEN set, `Authorization: Bearer
 * <METRICS_TOKEN>` is required (compared in constant time, on SHA-256 digests so lengths match).
 */
import { Elysia } from "elysia";
import { constantTimeEqual, sha256Hex } from "../auth/crypto";
import { Problem } from "../problems";
import type { Metrics } from "./metrics";

export async function metricsRoutes(metrics: Metrics, token: string | null) {
  const expected = token ? await sha256Hex(token) : null;
  return new Elysia({ tags: ["operations"] }).get(
    "/metrics",
    async ({ request }) => {
      if (expected) {
        const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
        if (!match || !constantTimeEqual(await sha256Hex(match[1]!), expected)) {
          const detail = "the metrics need Authorization: Bearer <METRICS_TOKEN>";
          throw new Problem(401, detail, [{ field: "authorization", message: detail }], { "www-authenticate": 'Bearer realm="metrics"' });
        }
      }
      return new Response(await metrics.render(), { headers: { "content-type": metrics.contentType } });
    },
    { detail: { summary: "Prometheus metrics (bearer METRICS_TOKEN when it is set)", security: [] } },
  );
}
