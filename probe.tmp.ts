import { testApp } from "./tests/support/app";
const t = await testApp("pglite");
const good = { text: "t", start_time: "2026-12-01T09:00:00", end_time: "2026-12-02T09:00:00" };
const cases: [string, string, unknown][] = [
  ["POST", "/api/v1/clients", { phone_number: "79101459028", tag: 5 }],
  ["POST", "/api/v1/clients", { phone_number: true }],
  ["POST", "/api/v1/clients", { phone_number: 12345678901234567890123 }],
  ["POST", "/api/v1/clients", { phone_number: "x".repeat(40) }],
  ["POST", "/api/v1/clients", { phone_number: "79101459028", tag: "x".repeat(70) }],
  ["POST", "/api/v1/clients", { phone_number: "79101459028", timezone: null }],
  ["POST", "/api/v1/clients", {}],
  ["POST", "/api/v1/mailings", { ...good, codes_filter: 910 }],
  ["POST", "/api/v1/mailings", { ...good, codes_filter: [true] }],
  ["POST", "/api/v1/mailings", { ...good, tags_filter: "vip" }],
  ["POST", "/api/v1/mailings", { ...good, tags_filter: [5] }],
  ["POST", "/api/v1/mailings", { ...good, send_window: "x" }],
  ["POST", "/api/v1/mailings", { ...good, send_window: { from: 9 } }],
  ["POST", "/api/v1/mailings", { ...good, text: 5 }],
  ["POST", "/api/v1/mailings", { ...good, text: "x".repeat(1001) }],
  ["POST", "/api/v1/mailings", { text: "x" }],
  ["POST", "/api/v1/mailings", { ...good, start_time: "9999-12-31T23:59:59" }],
  ["POST", "/api/v1/mailings", { ...good, start_time: "2026-12-01T09:00:00+25:00" }],
  ["POST", "/api/v1/mailings", { ...good, codes_filter: Array(1001).fill(910) }],
  ["POST", "/api/v1/tokens", { name: 5 }],
  ["GET", "/api/v1/clients?cursor=99999999999", undefined],
  ["GET", "/api/v1/clients/99999999999", undefined],
  ["GET", "/api/v1/clients?q=abc", undefined],
  ["DELETE", "/api/v1/clients", undefined],
];
for (const [m, p, b] of cases) {
  const r = await t.request(m, p, b);
  console.log(m, p, JSON.stringify(b)?.slice(0, 80), "→", r.status, JSON.stringify(r.body?.errors ?? r.body)?.slice(0, 300), r.headers.get("allow"));
}
await t.close();
