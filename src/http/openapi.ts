/** Schemas shared by the OpenAPI document. */
import { t } from "elysia";

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
