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
