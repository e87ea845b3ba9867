/**
 * The client list as CSV (issue 11): the same filter as the list, streamed page by page (1,000
 * rows a query, by id), so a million clients never sit in memory. The columns are the ones the
 * import reads, so an export can be imported again.
 */
import type { ClientFilter } from "./repo";
import type { ClientService } from "./service";

export const exportColumns = ["phone_number", "operator_code", "tag", "timezone", "attributes", "created_at"] as const;
const pageSize = 1000;

/**
 * One CSV field: quoted when it holds a comma, quote or line break. A text that a spreadsheet would
 * run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading apostrophe (OWASP, CSV injection).
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function exportClients(service: ClientService, filter: ClientFilter): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cursor: number | null = null;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(exportColumns.join(",") + "\r\n"));
        return;
      }
      const page = await service.list(filter, pageSize, cursor);
      const lines = page.items.map((c) => [c.phone_number, c.operator_code, c.tag, c.timezone, Object.keys(c.attributes).length > 0 ? JSON.stringify(c.attributes) : "", c.created_at].map(csvField).join(",") + "\r\n");
      if (lines.length > 0) controller.enqueue(encoder.encode(lines.join("")));
      cursor = page.next_cursor;
      if (cursor === null) controller.close();
    },
  });
}

export function csvResponse(stream: ReadableStream<Uint8Array>, name: string, headers: Record<string, string> = {}): Response {
  return new Response(stream, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="${name}"`,
      "x-content-type-options": "nosniff",
      "cache-control": "no-store",
      ...headers,
    },
  });
}
