/**
 * RFC 9457 problem documents. Every error a user can cause is thrown as a Problem and rendered by the
 * one `onError` in app.ts; anything else is logged and becomes a 500 that leaks nothing.
 */
export type FieldError = { field: string; message: string };

export type ProblemDocument = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors: FieldError[];
};

const titles: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** An expected failure with an HTTP status, a human detail and the fields at fault. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: FieldError[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  toJSON(): ProblemDocument {
    return {
      type: `https://httpstatuses.io/${this.status}`,
      title: titles[this.status] ?? "Error",
      status: this.status,
      detail: this.detail,
      errors: this.errors,
    };
  }
}

/** 422 naming one field. */
export function invalid(field: string, message: string): Problem {
  return new Problem(422, `${field}: ${message}`, [{ field, message }]);
}

/** 422 naming several fields at once. */
export function invalidFields(errors: FieldError[]): Problem {
  return new Problem(422, errors.map((e) => `${e.field}: ${e.message}`).join("; "), errors);
}

export function notFound(what: string, id: number | string): Problem {
  return new Problem(404, `${what} ${id} does not exist`, [{ field: "id", message: "not found" }]);
}

export function problemResponse(problem: Problem, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(problem.toJSON()), {
    status: problem.status,
    headers: { "content-type": "application/problem+json", ...problem.headers, ...extraHeaders },
  });
}
