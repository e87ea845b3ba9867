/**
 * JSON request bodies (SPEC §8): at most 1 MiB (413 beyond, checked while reading so a chunked body
 * cannot slip past the Content-Length check), and anything that is not JSON is a 400, whatever
 * Content-Type the caller sent. Form posts of the web UI keep Elysia's own parsers.
 *
 * Every API body is a JSON object: an array, a string or `null` in its place is a 422 naming
 * `body` (Elysia's object schemas would otherwise read an array as an empty object). A string
 * holding a NUL character is a 422 naming its field: PostgreSQL cannot store one in `text`.
 */
import { type FieldError, Problem } from "../problems";

export const jsonBodyLimit = 1024 * 1024;

/** A request body left unread for a handler that streams it. */
export class StreamedBody {
  constructor(readonly stream: ReadableStream<Uint8Array> | null) {}
}

const formTypes = ["application/x-www-form-urlencoded", "multipart/form-data"];

export async function parseJsonBody(request: Request, contentType: string): Promise<unknown> {
  const path = new URL(request.url).pathname;
  const isApi = path.startsWith("/api/") || /^\/(clients|mailing|stats)\//.test(path);
  // Webhooks read their form fields themselves: Twilio's signature covers every field, and SMS.ru
  // repeats `data[]` keys.
  if (path.startsWith("/webhooks/")) return await readLimited(request, jsonBodyLimit);
  if (!isApi) {
    if (formTypes.some((t) => contentType.startsWith(t))) return undefined; // Elysia parses forms
  }
  // The CSV import reads the body itself, as a stream (Elysia's `parse: "none"` does not apply
  // once an app-wide parser is registered, so the stream is handed over wrapped).
  if (path.endsWith("/clients/import") || path.endsWith("/blocklist/import")) return new StreamedBody(request.body);
  const text = await readLimited(request, jsonBodyLimit);
  // No body (POST …/pause, DELETE): an empty object, so that routes with a schema answer 422
  // naming the missing fields and routes without one do not care.
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Problem(400, "the body is not valid JSON", [{ field: "body", message: "is not valid JSON" }]);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const found = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new Problem(422, `body: must be a JSON object, not ${found}`, [
      { field: "body", message: `must be a JSON object, not ${found}` },
    ]);
  }
  const nul = findNul(value, "");
  if (nul) throw new Problem(422, `${nul.field}: ${nul.message}`, [nul]);
  return value;
}

/** The first string (or key) in a parsed JSON value that contains U+0000, named by its path. */
function findNul(value: unknown, path: string): FieldError | null {
  if (typeof value === "string") {
    return value.includes("\u0000") ? { field: path || "body", message: "must not contain NUL characters" } : null;
  }
  if (value === null || typeof value !== "object") return null;
  for (const [key, item] of Object.entries(value)) {
    const field = path ? `${path}.${key}` : key;
    if (key.includes("\u0000")) return { field: path || "body", message: "must not contain NUL characters" };
    const found = findNul(item, field);
    if (found) return found;
  }
  return null;
}

async function readLimited(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Problem(413, `the body is larger than ${limit} bytes`, [{ field: "body", message: "too large" }]);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}
