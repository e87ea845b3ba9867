/** Schemas shared by the OpenAPI document. */
import { t, type TSchema } from "elysia";

export const problemSchema = t.Object(
  {
    type: t.String(),
    title: t.String(),
    status: t.Integer(),
    detail: t.String(),
    errors: t.Array(t.Object({ field: t.String(), message: t.String() })),
  },
  { description: "RFC 9457 problem document (application/problem+json)" },
);

/**
 * Spread into the options of every route with a JSON body. The app's own parser (http/body.ts) reads
 * the body before any named parser runs, so this changes nothing at run time; it tells the OpenAPI
 * generator the media type, which it cannot infer from a parser function (the request body would
 * otherwise be documented with no content, hence no schema and no example).
 */
export const jsonBody = { parse: "json" as const };

const statusText: Record<number, string> = { 200: "OK", 201: "Created", 404: "Not found", 409: "Conflict", 422: "Invalid input" };

/**
 * OpenAPI responses given as documentation only (`detail.responses`), for the busiest routes:
 * a `response` schema makes Elysia check and re-encode every answer against it, which cost about a
 * sixth of such a route's CPU (issue 4, target 5). Problems are typed `application/problem+json`.
 */
export function documentedResponses(responses: Record<number, TSchema>): Record<string, { description: string; content: Record<string, { schema: object }> }> {
  return Object.fromEntries(
    Object.entries(responses).map(([status, schema]) => [
      status,
      {
        description: statusText[Number(status)] ?? "",
        content: { [Number(status) >= 400 ? "application/problem+json" : "application/json"]: { schema: schema as unknown as object } },
      },
    ]),
  );
}
