/**
 * Issue 4, target 1 (c): the ceiling. A bare `fetch` loop, no database: N POSTs of the gateway
 * protocol (same path, headers and body as src/gateway/http.ts) with `concurrency` in flight.
 * `--client http-gateway` sends through the service's HttpGateway instead (its timeout signals
 * included), which separates the HTTP client's cost from the database's.
 *
 *   bun bench/suites/dispatch/fetch.ts --gateway http://127.0.0.1:4710 --n 200000 --concurrency 100
 */
import { HttpGateway } from "../../../src/gateway/http";
import { arg, cpuMeter, check, gatewayAt, main, rssMonitor } from "../../support";

await main(async () => {
  const n = Number(arg("n", "2000"));
  const concurrency = Number(arg("concurrency", "100"));
  const client = arg("client", "fetch");
  const gateway = gatewayAt(arg("gateway", "http://127.0.0.1:4710"));
  const gatewayPid = Number(arg("gateway-pid", "0")) || null;
  await gateway.reset();

  const text = JSON.stringify("Bench message");
  const http = new HttpGateway({ baseUrl: gateway.url, token: "bench-token", timeoutMs: 10_000 });
  const send =
    client === "http-gateway"
      ? async (id: number) => {
          const result = await http.send({ id, phone: `7${String(id).padStart(10, "0")}`, text: "Bench message" });
          if (result.outcome !== "sent") throw new Error(`send ${id}: ${JSON.stringify(result)}`);
        }
      : async (id: number) => {
          const response = await fetch(`${gateway.url}/send/${id}`, {
            method: "POST",
            headers: { authorization: "Bearer bench-token", "content-type": "application/json" },
            body: `{"id":${id},"phone":7${String(id).padStart(10, "0")},"text":${text}}`,
          });
          await response.arrayBuffer();
          if (!response.ok) throw new Error(`send ${id}: HTTP ${response.status}`);
        };

  let next = 0;
  const rss = rssMonitor(process.pid, 25);
  const cpu = cpuMeter(gatewayPid, "-no-database-"); // no database: PostgreSQL counts as 0
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await send(++next);
    }),
  );
  const ms = performance.now() - started;
  const rssPeakMb = rss.stop().peakMb;
  const cpuS = cpu.stop();

  const received = await gateway.received();
  check(received.total === n && received.unique === n, `gateway received each id once: total ${received.total}, unique ${received.unique}`);
  return { client, n, concurrency, ms: Math.round(ms), perSecond: Math.round((n / ms) * 1000), rssPeakMb, cpuS };
});
