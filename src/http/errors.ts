/**
 * The one error renderer (SPEC §8): every failure leaves as an RFC 9457 problem document.
 * Validation errors from Elysia's schemas become 422s naming each field; a body that is not JSON
 * is a 400; errors nobody expected are logged with context and become a 500 that leaks nothing.
 */
import type { ValidationError } from "elysia";
import { describeError, type Logger } from "../ops/logger";
import { type FieldError, Problem, problemResponse } from "../problems";
import { databaseUnavailable, unavailableResponse } from "./unavailable";

type Schema = {
  type?: string;
  title?: string;
  examples?: unknown[];
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  maxLength?: number;
  maxItems?: number;
  properties?: Record<string, Schema>;
  items?: Schema;
};

type Detail = { path?: string; summary?: string; message?: string; schema?: Schema; value?: unknown; errors?: Iterable<Detail>[] };

const typeMismatch = /^Expected (string|number|integer|boolean|null|object|array)$/;

/**
 * A value that fits no member of a union (`send_window`: object or null; `phone_number`: string or
 * number) is reported by TypeBox as "should be one of …", which hides the real fault. When one
 * member got past the type check, its own errors are the useful ones: `send_window.from` too long,
 * `phone_number` longer than 32 characters.
 */
function explain(detail: Detail): Detail[] {
  if (!detail.errors) return [detail];
  for (const branch of detail.errors) {
    const inner = Array.from(branch);
    const mismatch = inner.length === 1 && inner[0]!.path === detail.path && typeMismatch.test(inner[0]!.message ?? "");
    if (inner.length > 0 && !mismatch) return inner.flatMap(explain);
  }
  return [detail];
}

const generic: Record<string, string> = {
  string: "a string",
  number: "a number",
  integer: "a whole number",
  boolean: "true or false",
  null: "null",
  array: "a list",
  object: "an object",
};

/** An example as a person would type it: `[910, 911]`, `{"from": "09:00"}`, `"Europe/Moscow"`. */
function example(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(example).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${example(v)}`).join(", ")}}`;
  }
  return JSON.stringify(value);
}

/**
 * What a schema accepts, in words: its `title` (set on the schemas whose type alone says too
 * little, such as `codes_filter`) with its examples, or else its JSON type.
 */
function accepted(schema: Schema | undefined): string {
  if (!schema) return "a valid value";
  if (schema.title) {
    const examples = schema.examples?.length ? `, such as ${schema.examples.map(example).join(" or ")}` : "";
    return schema.title + examples;
  }
  if (schema.anyOf) return [...new Set(schema.anyOf.map(accepted))].join(" or ");
  if (schema.enum) return `one of ${schema.enum.join(", ")}`;
  if (schema.const !== undefined) return example(schema.const);
  return generic[schema.type ?? ""] ?? "a valid value";
}

/** The schema and value at a path of the body, for a parent the validator did not report itself. */
function at(schema: Schema | undefined, value: unknown, segments: string[]): { schema?: Schema; value: unknown } {
  let s = schema;
  let v = value;
  for (const segment of segments) {
    const container = s?.anyOf?.find((m) => m.type === (Array.isArray(v) ? "array" : "object")) ?? s;
    s = container?.type === "array" ? container.items : container?.properties?.[segment];
    v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[segment] : undefined;
  }
  return { schema: s, value: v };
}

/** One validator error as a field and a sentence that says what is accepted. */
function humanError(detail: Detail, part: string, root: { schema?: Schema; value: unknown }): FieldError {
  let segments = (detail.path ?? "").split("/").filter(Boolean);
  let { schema, value } = detail;
  if (schema === undefined) ({ schema, value } = at(root.schema, root.value, segments));
  // `"codes_filter": 910` is reported on `codes_filter.0` (Elysia turns a lone value into a list
  // with a hole in it, which JSON cannot write): the fault is that it is not a list.
  const parent = at(root.schema, root.value, segments.slice(0, -1));
  if (segments.length > 0 && /^\d+$/.test(segments.at(-1)!) && (!Array.isArray(parent.value) || value === undefined)) {
    segments = segments.slice(0, -1);
    ({ schema, value } = parent);
  }
  const field = segments.join(".") || part;
  if (value === undefined) return { field, message: "is required" };
  if (typeof value === "string" && schema?.maxLength !== undefined && value.length > schema.maxLength) {
    return { field, message: `must be at most ${schema.maxLength} characters` };
  }
  if (Array.isArray(value) && schema?.maxItems !== undefined && value.length > schema.maxItems) {
    return { field, message: `must have at most ${schema.maxItems} items` };
  }
  return { field, message: `must be ${accepted(schema)}` };
}

/**
 * A `transform` hook for bodies with list fields. Elysia copies a string given for a list of unions
 * (`codes_filter`) character by character before validating it: `"910"` became `["9","1","0"]` and
 * `""` an empty list, i.e. every operator. Checked on the body as sent, before that copy.
 */
export function listsOnly(schema: { properties: Record<string, unknown> }) {
  const lists = Object.entries(schema.properties as Record<string, Schema>).filter(([, s]) => s.type === "array");
  return ({ body }: { body: unknown }) => {
    if (body === null || typeof body !== "object") return;
    const errors = lists
      .filter(([name]) => {
        const value = (body as Record<string, unknown>)[name];
        return value !== undefined && !Array.isArray(value);
      })
      .map(([name, s]) => ({ field: name, message: `must be ${accepted(s)}` }));
    if (errors.length > 0) throw new Problem(422, errors.map((e) => `${e.field}: ${e.message}`).join("; "), errors);
  };
}

function validationProblem(error: ValidationError): Problem {
  const part = error.type === "params" ? "path" : error.type;
  const validator = error.validator as { schema?: Schema } | undefined;
  const root = { schema: validator?.schema ?? (validator as Schema | undefined), value: error.value };
  const seen = new Set<string>();
  const errors: FieldError[] = [];
  for (const item of error.all) {
    for (const detail of explain(item as Detail)) {
      const human = humanError(detail, part, root);
      if (seen.has(human.field)) continue;
      seen.add(human.field);
      errors.push(human);
    }
  }
  if (errors.length === 0) errors.push({ field: part, message: "is invalid" });
  return new Problem(422, errors.map((e) => `${e.field}: ${e.message}`).join("; "), errors);
}

export function renderError(
  code: string | number,
  error: unknown,
  request: Request,
  logger: Logger,
  allowedOn: (path: string) => string[] = () => [],
): Response {
  if (error instanceof Problem) return problemResponse(error);
  if (code === "VALIDATION") return problemResponse(validationProblem(error as ValidationError));
  if (code === "PARSE") {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Problem) return problemResponse(cause);
    return problemResponse(new Problem(400, "the body is not valid JSON", [{ field: "body", message: "is not valid JSON" }]));
  }
  if (code === "NOT_FOUND") {
    const path = new URL(request.url).pathname;
    const allow = allowedOn(path);
    if (allow.length > 0 && !allow.includes(request.method)) {
      return problemResponse(
        new Problem(405, `${request.method} is not allowed on ${path}; allowed: ${allow.join(", ")}`, [], { allow: allow.join(", ") }),
      );
    }
    return problemResponse(new Problem(404, `no route for ${request.method} ${path}`));
  }
  // The database away or a statement timed out: 503 with Retry-After, not a 500 (unavailable.ts).
  if (databaseUnavailable(error)) return unavailableResponse(error, request, logger);
  // No path: it can carry a token (a webhook's, a link's); the caller's logger binds the route template.
  logger.error("unhandled error", {
    method: request.method,
    code: String(code),
    // The error's type, message, stack and cause (SQLSTATE, ECONNREFUSED), never a statement's SQL
    // text or parameters (logger.ts, describeError).
    error: describeError(error),
  });
  return problemResponse(new Problem(500, "an unexpected error occurred; it has been logged"));
}
