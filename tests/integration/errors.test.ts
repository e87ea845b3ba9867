/**
 * SPEC §8 and issue 2 item 8: a catalogue of bad input sent to every write route (POST, PATCH,
 * DELETE; new and compatibility). Each must answer a 4xx problem document naming the field (or
 * `body` / `id`), leave the database exactly as it was, and never produce a 500.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { adminKey } from "../support/app";
import { type Backend, backends, type TestDatabase, freshDatabase } from "../support/db";
import { snapshot } from "./expect-problem";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

type BodyKind = "clientCreate" | "clientPatch" | "mailingCreate" | "mailingPatch" | "tokenCreate" | "blockCreate" | "none";
type Route = { method: "POST" | "PATCH" | "DELETE"; path: string; body: BodyKind; target?: "client" | "mailing" | "token" | "blocked" };

const routes: Route[] = [
  { method: "POST", path: "/api/v1/clients", body: "clientCreate" },
  { method: "PATCH", path: "/api/v1/clients/{id}", body: "clientPatch", target: "client" },
  { method: "DELETE", path: "/api/v1/clients/{id}", body: "none", target: "client" },
  { method: "POST", path: "/api/v1/mailings", body: "mailingCreate" },
  { method: "PATCH", path: "/api/v1/mailings/{id}", body: "mailingPatch", target: "mailing" },
  { method: "DELETE", path: "/api/v1/mailings/{id}", body: "none", target: "mailing" },
  { method: "POST", path: "/api/v1/mailings/{id}/pause", body: "none", target: "mailing" },
  { method: "POST", path: "/api/v1/mailings/{id}/resume", body: "none", target: "mailing" },
  { method: "POST", path: "/api/v1/mailings/{id}/cancel", body: "none", target: "mailing" },
  { method: "POST", path: "/api/v1/tokens", body: "tokenCreate" },
  { method: "DELETE", path: "/api/v1/tokens/{id}", body: "none", target: "token" },
  { method: "POST", path: "/api/v1/blocklist", body: "blockCreate" },
  { method: "DELETE", path: "/api/v1/blocklist/{id}", body: "none", target: "blocked" },
  ...["", "/"].flatMap((slash): Route[] => [
    { method: "POST", path: `/clients/create${slash}`, body: "clientCreate" },
    { method: "PATCH", path: `/clients/update/{id}${slash}`, body: "clientPatch", target: "client" },
    { method: "DELETE", path: `/clients/delete/{id}${slash}`, body: "none", target: "client" },
    { method: "POST", path: `/mailing/create${slash}`, body: "mailingCreate" },
    { method: "PATCH", path: `/mailing/update/{id}${slash}`, body: "mailingPatch", target: "mailing" },
    { method: "DELETE", path: `/mailing/delete/{id}${slash}`, body: "none", target: "mailing" },
  ]),
];

/** A bad body, the status it must get, and the field(s) the answer must name. */
type Case = { label: string; body: unknown; status: number; field: string | string[] };

const long = (n: number) => "x".repeat(n);
const goodMailing = { text: "t", start_time: "2026-12-01T09:00:00", end_time: "2026-12-02T09:00:00" };

/** Wrong types, nulls, arrays for objects, extra-long strings, NUL characters, domain errors: per field. */
function fieldCases(field: string, values: [string, unknown][], base: Record<string, unknown> = {}, status = 422): Case[] {
  return values.map(([label, value]) => ({ label: `${field}: ${label}`, body: { ...base, [field]: value }, status, field }));
}

const clientFields = (base: Record<string, unknown>): Case[] => [
  ...fieldCases("phone_number", [
    ["boolean", true],
    ["null", null],
    ["array", [79101459028]],
    ["object", { n: 79101459028 }],
    ["letters", "abc"],
    ["too few digits", "12345"],
    ["extra-long string", long(100_000)],
    ["huge number", 1e300],
    ["99999999999999999999", 99999999999999999999],
    ["negative", -79101459028],
    ["NUL character", "7910\u00001459028"],
  ], base),
  ...fieldCases("tag", [
    ["number", 5],
    ["null", null],
    ["array", ["vip"]],
    ["object", { tag: "vip" }],
    ["65 characters", long(65)],
    ["extra-long string", long(100_000)],
    ["NUL character", "a\u0000b"],
  ], base),
  ...fieldCases("timezone", [
    ["number", 3],
    ["null", null],
    ["array", ["Europe/Moscow"]],
    ["unknown zone", "Asia/Unknown"],
    ["an offset", "+03:00"],
    ["extra-long string", long(10_000)],
    ["NUL character", "Europe/Moscow\u0000"],
  ], base),
  ...fieldCases("operator_code", [
    ["not the phone's code", "999"],
    ["not 3 digits", "9100"],
    ["null", null],
    ["array", ["910"]],
    ["boolean", false],
    ["extra-long string", long(10_000)],
  ], base),
];

const mailingFields = (base: Record<string, unknown>): Case[] => [
  ...fieldCases("text", [
    ["number", 5],
    ["null", null],
    ["array", ["text"]],
    ["object", { text: "t" }],
    ["empty", ""],
    ["1001 characters", long(1001)],
    ["extra-long string", long(500_000)],
    ["NUL character", "a\u0000b"],
  ], base),
  ...["start_time", "end_time"].flatMap((field) =>
    fieldCases(field, [
      ["number", 1764579600],
      ["null", null],
      ["array", ["2026-12-01T09:00:00"]],
      ["object", { date: "2026-12-01" }],
      ["malformed date 2026-09-32", "2026-09-32T09:00:00"],
      ["not a date", "soon"],
      ["year 0001", "0001-01-01T00:00:00"],
      ["extra-long string", long(10_000)],
      ["NUL character", "2026-12-01T09:00:00\u0000"],
    ], base),
  ),
  { label: "end_time before start_time", body: { ...base, start_time: "2026-12-02T09:00:00", end_time: "2026-12-01T09:00:00" }, status: 422, field: "end_time" },
  { label: "end_time over in every zone", body: { ...base, start_time: "2026-11-29T09:00:00", end_time: "2026-11-30T11:00:00" }, status: 422, field: "end_time" },
  ...fieldCases("tags_filter", [
    ["string", "vip"],
    ["null", null],
    ["object", { vip: true }],
    ["numbers", [5]],
    ["null element", [null]],
    ["65-character tag", [long(65)]],
    ["1001 tags", Array.from({ length: 1001 }, (_, i) => `t${i}`)],
    ["NUL character", ["a\u0000"]],
  ], base),
  ...fieldCases("codes_filter", [
    ["string", "910"],
    ["null", null],
    ["object", { code: 910 }],
    ["2-digit code", [91]],
    ["boolean element", [true]],
    ["null element", [null]],
    ["nested array", [[910]]],
    ["extra-long code", [long(10_000)]],
    ["1001 codes", Array.from({ length: 1001 }, () => "910")],
  ], base),
  ...fieldCases("send_window", [
    ["string", "09:00-21:00"],
    ["array", ["09:00", "21:00"]],
    ["number", 9],
    ["from not HH:MM", { from: "9:00", to: "21:00" }],
    ["to 24:00", { from: "09:00", to: "24:00" }],
    ["from a number", { from: 900, to: "21:00" }],
    ["to null", { from: "09:00", to: null }],
    ["to missing", { from: "09:00" }],
    ["extra-long from", { from: long(10_000), to: "21:00" }],
    ["empty window", { from: "09:00", to: "09:00" }],
  ], base),
];

const tokenFields: Case[] = fieldCases("name", [
  ["number", 5],
  ["null", null],
  ["array", ["ci"]],
  ["object", { name: "ci" }],
  ["blank", "   "],
  ["101 characters", long(101)],
  ["extra-long string", long(100_000)],
  ["NUL character", "c\u0000i"],
]);

function bodyCases(kind: BodyKind): Case[] {
  switch (kind) {
    case "clientCreate":
      return [
        { label: "missing phone_number", body: { tag: "vip" }, status: 422, field: "phone_number" },
        { label: "empty object", body: {}, status: 422, field: "phone_number" },
        ...clientFields({ phone_number: 9991234567 }).filter((c) => !c.label.startsWith("operator_code: not the phone")),
        { label: "operator_code that differs from the phone", body: { phone_number: 9991234567, operator_code: "910" }, status: 422, field: "operator_code" },
        { label: "duplicate phone", body: { phone_number: "+7 (910) 145-90-28" }, status: 409, field: "phone_number" },
      ];
    case "clientPatch":
      return [
        ...clientFields({}),
        { label: "another client's phone", body: { phone_number: "89101459029" }, status: 409, field: "phone_number" },
      ];
    case "mailingCreate":
      return [
        { label: "empty object", body: {}, status: 422, field: ["text", "start_time", "end_time"] },
        { label: "missing text", body: { start_time: goodMailing.start_time, end_time: goodMailing.end_time }, status: 422, field: "text" },
        { label: "missing start_time", body: { text: "t", end_time: goodMailing.end_time }, status: 422, field: "start_time" },
        { label: "missing end_time", body: { text: "t", start_time: goodMailing.start_time }, status: 422, field: "end_time" },
        ...mailingFields(goodMailing),
      ];
    case "mailingPatch":
      return mailingFields({});
    case "tokenCreate":
      return [{ label: "missing name", body: {}, status: 422, field: "name" }, ...tokenFields];
    case "blockCreate":
      return [
        { label: "missing phone_number", body: {}, status: 422, field: "phone_number" },
        ...fieldCases("phone_number", [["boolean", true], ["null", null], ["array", [79101459028]], ["letters", "abc"], ["too few digits", "12345"]]),
        ...fieldCases("reason", [["number", 5], ["too long", long(201)]], { phone_number: 9991234567 }),
      ];
    case "none":
      return [];
  }
}

/** Whole-body faults every write route must refuse, body or not. */
const bodyShapeCases: Case[] = [
  { label: "invalid JSON", body: "{", status: 400, field: "body" },
  { label: "invalid JSON (single quotes)", body: "{'phone_number': 1}", status: 400, field: "body" },
  { label: "invalid JSON (truncated array)", body: "[1,", status: 400, field: "body" },
  { label: "a form instead of JSON", body: "phone_number=79101459028", status: 400, field: "body" },
  { label: "null body", body: "null", status: 422, field: "body" },
  { label: "array body", body: "[]", status: 422, field: "body" },
  { label: "array of objects body", body: JSON.stringify([{ phone_number: 9991234567, text: "t" }]), status: 422, field: "body" },
  { label: "string body", body: JSON.stringify("phone_number"), status: 422, field: "body" },
  { label: "number body", body: "42", status: 422, field: "body" },
];

const badIds = ["abc", "-1", "0", "1.5", "1e3", "0x10", "99999999999999999999", "2147483648", long(5000)];

/** A valid body for the route, so that an id fault is the only fault. */
function validBody(kind: BodyKind): unknown {
  switch (kind) {
    case "clientCreate":
      return { phone_number: 9990000000 };
    case "clientPatch":
      return { tag: "fine" };
    case "mailingCreate":
      return goodMailing;
    case "mailingPatch":
      return { text: "fine" };
    case "tokenCreate":
      return { name: "fine" };
    case "blockCreate":
      return { phone_number: 9990000003 };
    case "none":
      return undefined;
  }
}

const twoMiB = 2 * 1024 * 1024;

for (const backend of backends()) {
  describe(`[${backend}] §8 error catalogue on every write route`, () => {
    let db: TestDatabase;
    let logger: ReturnType<typeof memoryLogger>;
    let handle: (request: Request) => Promise<Response>;
    const ids: Record<"client" | "mailing" | "token" | "blocked", number | string> = { client: 0, mailing: 0, token: 0, blocked: "" };
    let before: Record<string, string>;
    const statuses: number[] = [];

    async function send(method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}) {
      const init: RequestInit & { duplex?: string } = { method, headers: { authorization: `Bearer ${adminKey}`, ...headers } };
      if (body !== undefined) {
        init.body = body;
        if (body instanceof ReadableStream) init.duplex = "half";
      }
      const response = await handle(new Request(`http://localhost${path}`, init));
      const text = await response.text();
      let parsed: any = null;
      try {
        parsed = JSON.parse(text);
      } catch {}
      statuses.push(response.status);
      return { status: response.status, text, body: parsed, type: response.headers.get("content-type") ?? "" };
    }

    /** The answer is `status`, a problem document whose errors name the field, and nothing was written. */
    async function expectRefused(reply: Awaited<ReturnType<typeof send>>, status: number, field: string | string[], where: string) {
      const context = `${where} → ${reply.status} ${reply.text.slice(0, 300)}`;
      expect(reply.status, context).toBe(status);
      expect(reply.type, context).toStartWith("application/problem+json");
      expect(reply.body?.status, context).toBe(status);
      const wanted = Array.isArray(field) ? field : [field];
      const named: string[] = (reply.body?.errors ?? []).map((e: { field: string }) => e.field);
      expect(
        named.some((f) => wanted.some((w) => f === w || f.startsWith(`${w}.`))),
        `${context}: expected errors naming ${wanted.join(" or ")}`,
      ).toBe(true);
      expect(await snapshot(db.database), `${context}: the database changed`).toEqual(before);
    }

    const pathOf = (route: Route, id?: string) =>
      route.path.replace("{id}", id ?? String(route.target ? ids[route.target] : ""));

    beforeAll(async () => {
      db = await freshDatabase(backend as Backend);
      logger = memoryLogger();
      const app = await createApp({
        config: { adminApiKey: adminKey },
        database: db.database,
        clock: new FixedClock("2026-12-01T00:00:00Z"),
        logger,
        signals: silentSignals,
      });
      handle = (request) => app.handle(request);
      const json = (value: unknown) => JSON.stringify(value);
      const ct = { "content-type": "application/json" };
      ids.client = (await send("POST", "/api/v1/clients", json({ phone_number: 9101459028, tag: "vip", timezone: "Europe/Moscow" }), ct)).body.id;
      await send("POST", "/api/v1/clients", json({ phone_number: 9101459029, tag: "vip", timezone: "Asia/Vladivostok" }), ct);
      ids.mailing = (await send("POST", "/api/v1/mailings", json({ ...goodMailing, tags_filter: ["vip"], send_window: { from: "08:00", to: "22:00" } }), ct)).body.id;
      ids.token = (await send("POST", "/api/v1/tokens", json({ name: "seed" }), ct)).body.id;
      ids.blocked = (await send("POST", "/api/v1/blocklist", json({ phone_number: 9990000002 }), ct)).body.phone_number;
      expect([ids.client, ids.mailing, ids.token].every((id) => Number.isInteger(id) && (id as number) > 0)).toBe(true);
      expect(ids.blocked).toBe("79990000002");
      before = await snapshot(db.database);
      expect(before.messages).toStartWith("2 rows");
    });
    afterAll(() => db.drop());

    test("the catalogue covers every documented write route (CSV import aside: it has its own tests)", async () => {
      const spec = (await send("GET", "/docs/json")).body;
      const documented = Object.entries<Record<string, unknown>>(spec.paths).flatMap(([path, ops]) =>
        Object.keys(ops)
          .filter((m) => ["post", "patch", "delete", "put"].includes(m))
          .map((m) => `${m.toUpperCase()} ${path.replace(/\{[^}]+\}/, "{id}").replace(/^(\/api\/v1\/\w+)\/$/, "$1")}`),
      );
      const covered = new Set(routes.map((r) => `${r.method} ${r.path}`));
      for (const route of documented) {
        if (route.endsWith("/import")) continue;
        expect(covered.has(route), route).toBe(true);
      }
    });

    for (const route of routes) {
      describe(`${route.method} ${route.path}`, () => {
        test("field faults: wrong types, missing fields, nulls, arrays for objects, long strings → 4xx naming the field", async () => {
          for (const c of bodyCases(route.body)) {
            const reply = await send(route.method, pathOf(route), JSON.stringify(c.body), { "content-type": "application/json" });
            await expectRefused(reply, c.status, c.field, c.label);
          }
        });

        test("body faults: invalid JSON → 400, a non-object → 422 naming body", async () => {
          for (const c of bodyShapeCases) {
            const reply = await send(route.method, pathOf(route), c.body as string, { "content-type": "application/json" });
            await expectRefused(reply, c.status, c.field, c.label);
          }
        });

        test("a 2 MiB body → 413 naming body, with or without Content-Length", async () => {
          const big = JSON.stringify({ text: long(twoMiB), tag: "x", name: "x" });
          await expectRefused(
            await send(route.method, pathOf(route), big, { "content-type": "application/json", "content-length": String(big.length) }),
            413,
            "body",
            "2 MiB with Content-Length",
          );
          await expectRefused(await send(route.method, pathOf(route), big, { "content-type": "application/json" }), 413, "body", "2 MiB, no length");
          const stream = new ReadableStream<Uint8Array>({
            start(controller) {
              const chunk = new TextEncoder().encode(long(64 * 1024));
              for (let sent = 0; sent < twoMiB; sent += chunk.byteLength) controller.enqueue(chunk);
              controller.close();
            },
          });
          await expectRefused(await send(route.method, pathOf(route), stream, { "content-type": "application/json" }), 413, "body", "2 MiB streamed");
        });

        // A blocked phone's path segment is a phone number, checked as one (blocklist.test.ts).
        if (route.target && route.target !== "blocked") {
          test("ids: abc, -1, 0, 1.5, 99999999999999999999, … → 422 naming id; an unknown id → 404", async () => {
            const body = validBody(route.body);
            const encoded = body === undefined ? undefined : JSON.stringify(body);
            const headers: Record<string, string> = encoded === undefined ? {} : { "content-type": "application/json" };
            for (const id of badIds) {
              await expectRefused(await send(route.method, pathOf(route, id), encoded, headers), 422, "id", `id ${id.slice(0, 30)}`);
            }
            await expectRefused(await send(route.method, pathOf(route, "999999"), encoded, headers), 404, "id", "unknown id");
          });
        }
      });
    }

    test("no request of the catalogue was answered with a 5xx, and nothing unexpected was logged", () => {
      expect(statuses.length).toBeGreaterThan(900);
      expect(statuses.filter((s) => s >= 500)).toEqual([]);
      expect(logger.lines.filter((l) => l.level === "error")).toEqual([]);
    });
  });
}
