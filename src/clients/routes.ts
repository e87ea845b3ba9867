/** /api/v1/clients (SPEC §3, §8). Handlers pull values out of the request and call the service. */
import { Elysia, t } from "elysia";
import type { ApiGuard } from "../auth/guard";
import { idParams, parseId, parsePage, parseQueryText } from "../http/params";
import { StreamedBody } from "../http/body";
import { invalid, Problem } from "../problems";
import { databaseUnavailable } from "../db/errors";
import { describeError, type Logger } from "../ops/logger";
import { documentedResponses, jsonBody, problemSchema } from "../http/openapi";
import type { ResponseSet } from "../http/operations";
import { client, type ClientCreate, clientCreate, clientList, type ClientPatch, clientPatch, clientQuery } from "./model";
import type { ClientImporter } from "./import";
import { csvSource } from "./upload";
import type { ClientService } from "./service";
import { csvResponse, exportClients } from "./export";

/** The import report, as plain JSON Schema for the OpenAPI document (the route streams its body). */
const count = { type: "integer" } as const;
const importReport = {
  type: "object" as const,
  properties: {
    rows: count,
    created: count,
    updated: count,
    unchanged: count,
    duplicates: count,
    failed: count,
    errors: {
      type: "array" as const,
      items: { type: "object" as const, properties: { line: count, field: { type: "string" as const }, message: { type: "string" as const } } },
    },
  },
};

/** `?q=`: the digits to look for in phone numbers; text without a digit would match every client. */
function phoneDigits(q: string | undefined): string | undefined {
  if (q === undefined || q === "") return undefined;
  const digits = q.replace(/\D/g, "");
  if (digits === "") throw invalid("q", "must contain at least one digit of the phone number");
  return digits;
}

/** The client writes, each a handler and its hook: mounted below and by the compatibility routes (http/compat.ts). */
export function clientWrites(service: ClientService) {
  return {
    create: {
      handler: async ({ body, set }: { body: ClientCreate; set: ResponseSet }) => {
        const created = await service.create(body);
        set.status = 201;
        set.headers.location = `/api/v1/clients/${created.id}`;
        return created;
      },
      hook: {
        ...jsonBody,
        body: clientCreate,
        detail: { summary: "Create a client", responses: documentedResponses({ 201: client, 409: problemSchema, 422: problemSchema }) },
      },
    },
    update: {
      handler: ({ params, body }: { params: { id: string }; body: ClientPatch }) => service.update(parseId(params.id), body),
      hook: {
        params: idParams,
        ...jsonBody,
        body: clientPatch,
        response: { 200: client, 404: problemSchema, 409: problemSchema, 422: problemSchema },
        detail: { summary: "Change some fields of a client; re-plans its unsent messages" },
      },
    },
    remove: {
      handler: async ({ params, set }: { params: { id: string }; set: ResponseSet }) => {
        await service.remove(parseId(params.id));
        set.status = 204;
      },
      hook: {
        params: idParams,
        response: { 204: t.Void(), 404: problemSchema },
        detail: { summary: "Delete a client; its unsent messages are cancelled" },
      },
    },
  };
}

/**
 * `importLogger` gives the logger of the request being handled (its id and route bound): a progress
 * stream's import runs after the handler has answered 200, so an error there is reported in the
 * stream's last line and logged here — the app's error handler never sees it.
 */
export function clientRoutes(guard: ApiGuard, service: ClientService, importer: ClientImporter, importLogger: () => Logger) {
  const writes = clientWrites(service);
  return new Elysia({ prefix: "/clients", tags: ["clients"] })
    .use(guard)
    .post(
      "/import",
      async ({ body: raw, request }) => {
        const body = await csvSource(raw instanceof StreamedBody ? raw.stream : null, request.headers.get("content-type"));
        if (!(request.headers.get("accept") ?? "").includes("application/x-ndjson")) {
          return importer.import(body);
        }
        // Progress as it goes: one JSON line per batch of 5,000 rows, then the final report.
        const encoder = new TextEncoder();
        const logger = importLogger();
        const stream = new ReadableStream<Uint8Array>({
          async start(controller) {
            const line = (value: unknown) => controller.enqueue(encoder.encode(JSON.stringify(value) + "\n"));
            try {
              const report = await importer.import(body, (progress) => line({ progress }));
              line({ done: report });
            } catch (error) {
              if (error instanceof Problem) {
                line({ error: error.toJSON() });
              } else if (databaseUnavailable(error)) {
                logger.warn("import stopped: database unavailable", { error: describeError(error) });
                line({ error: { status: 503, detail: "the database became unavailable; the batches reported above were imported" } });
              } else {
                logger.error("import failed", { error: describeError(error) });
                line({ error: { status: 500, detail: "the import failed; it has been logged" } });
              }
            }
            controller.close();
          },
        });
        return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
      },
      {
        detail: {
          responses: {
            200: { description: "The import report", content: { "application/json": { schema: importReport } } },
            415: { description: "A Content-Type other than CSV or multipart/form-data", content: { "application/problem+json": { schema: problemSchema as unknown as object } } },
            422: { description: "An empty file, no phone_number column, or a form without a file", content: { "application/problem+json": { schema: problemSchema as unknown as object } } },
          },
          summary: "Import clients from CSV (streamed)",
          description:
            "Body: CSV (text/csv), or a multipart/form-data upload whose first file is the CSV. The header names phone_number (required), tag, timezone, operator_code, separated by commas or semicolons (told from the header). Rows are written in batches of 5,000; a known phone updates that client's tag and time zone; invalid or malformed rows are skipped and reported with their line (first 100). Send `Accept: application/x-ndjson` to receive a progress line per batch and the report as the last line.",
          requestBody: {
            content: {
              "text/csv": { schema: { type: "string" }, example: "phone_number,tag,timezone\n79101459028,vip,Europe/Moscow\n" },
              "multipart/form-data": { schema: { type: "object", properties: { file: { type: "string", format: "binary" } } } },
            },
          },
        },
      },
    )
    .get(
      "/export",
      ({ query }) => {
        const filter = {
          tag: parseQueryText(query.tag, "tag"),
          operatorCode: parseQueryText(query.operator_code || undefined, "operator_code"),
          q: parseQueryText(query.q, "q")?.replace(/\D/g, ""),
        };
        return csvResponse(exportClients(service, filter), "clients.csv");
      },
      {
        query: clientQuery,
        detail: {
          summary: "Export clients as CSV (same filters as the list)",
          description: "Columns: phone_number, operator_code, tag, timezone, created_at — importable again. Streamed; limit and cursor are ignored.",
          responses: { 200: { description: "CSV", content: { "text/csv": { schema: { type: "string" } } } } },
        },
      },
    )
    .get(
      "/",
      ({ query }) => {
        const { limit, cursor } = parsePage(query);
        const filter = {
          // `?tag=` (empty) lists the clients without a tag.
          tag: parseQueryText(query.tag, "tag"),
          operatorCode: parseQueryText(query.operator_code || undefined, "operator_code"),
          q: phoneDigits(parseQueryText(query.q, "q")),
        };
        return service.list(filter, limit, cursor);
      },
      {
        query: clientQuery,
        detail: { summary: "List clients", responses: documentedResponses({ 200: clientList }) },
      },
    )
    .post("/", writes.create.handler, writes.create.hook)
    .get("/:id", ({ params }) => service.get(parseId(params.id)), {
      params: idParams,
      detail: { summary: "Get a client", responses: documentedResponses({ 200: client, 404: problemSchema }) },
    })
    .patch("/:id", writes.update.handler, writes.update.hook)
    .delete("/:id", writes.remove.handler, writes.remove.hook);
}

