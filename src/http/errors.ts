/**
 * The one error renderer (SPEC §8): every failure leaves as an RFC 9457 problem document.
 * Validation errors from Elysia's schemas become 422s naming each field; a body that is not JSON
 * is a 400; errors nobody expected are logged with context and become a 500 that leaks nothing.
 */
import type { ValidationError } from "elysia";
import { describeError, type Logger } from "../ops/logger";
import { type FieldError, Problem, problemResponse } from "../problems";

/** `/send_window/from` → `send_window.from`; the root → the part of the request (`body`). */
function fieldName(path: string | undefined, part: string): string {
  const name = (path ?? "").replace(/^\//, "").replace(/\//g, ".");
  return name || part;
}

type Detail = { path?: string; summary?: string; message?: string; errors?: Iterable<Detail>[] };

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

function validationProblem(error: ValidationError): Problem {
  const part = error.type === "params" ? "path" : error.type;
  const seen = new Set<string>();
  const errors: FieldError[] = [];
  for (const item of error.all) {
    for (const detail of explain(item as Detail)) {
      const field = fieldName(detail.path, part);
      if (seen.has(field)) continue;
      seen.add(field);
      errors.push({ field, message: detail.summary ?? detail.message ?? "is invalid" });
    }
  }
  if (errors.length === 0) errors.push({ field: part, message: "is invalid" });
  // A body that is not an object at all (a string, an array, null) is named as the body.
  return new Problem(422, errors.map((e) => `${e.field}: ${e.message}`).join("; "), errors);
}

export function renderError(
  code: string | number,
  error: unknown,
  request: Request,
  logger: Logger,
): Response {
  if (error instanceof Problem) return problemResponse(error);
  if (code === "VALIDATION") return problemResponse(validationProblem(error as ValidationError));
  if (code === "PARSE") {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Problem) return problemResponse(cause);
    return problemResponse(new Problem(400, "the body is not valid JSON", [{ field: "body", message: "is not valid JSON" }]));
  }
  if (code === "NOT_FOUND") {
    return problemResponse(new Problem(404, `no route for ${request.method} ${new URL(request.url).pathname}`));
  }
  const url = new URL(request.url);
  logger.error("unhandled error", {
    method: request.method,
    path: url.pathname,
    code: String(code),
    // The error's type, message, stack and cause (SQLSTATE, ECONNREFUSED), never a statement's SQL
    // text or parameters (logger.ts, describeError).
    error: describeError(error),
  });
  return problemResponse(new Problem(500, "an unexpected error occurred; it has been logged"));
}
