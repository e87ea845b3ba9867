/**
 * Blocklist CSV (issue 15 item 5): export `phone_number,reason,created_at`; import reads a
 * `phone_number` column and an optional `reason` (at most 100,000 rows; the list is small next to
 * the client directory), blocking each phone as the API does. Bad rows are reported, not fatal.
 */
import { type CsvError, parse } from "csv-parse";
import { pipeline } from "node:stream";
import type { Readable } from "node:stream";
import { csvField } from "../clients/export";
import { invalid, type Problem } from "../problems";
import type { BlocklistService } from "./service";

const maxRows = 100_000;

export async function exportBlocklist(service: BlocklistService): Promise<string> {
  const lines = ["phone_number,reason,created_at"];
  let cursor: string | null = null;
  do {
    const page = await service.list(1000, cursor);
    for (const b of page.items) lines.push([b.phone_number, b.reason, b.created_at].map(csvField).join(","));
    cursor = page.next_cursor;
  } while (cursor !== null);
  return lines.join("\r\n") + "\r\n";
}

export type BlocklistImportReport = { rows: number; blocked: number; already: number; failed: number; errors: { line: number; field: string; message: string }[] };

export async function importBlocklist(service: BlocklistService, source: Readable, actor: string): Promise<BlocklistImportReport> {
  const report: BlocklistImportReport = { rows: 0, blocked: 0, already: 0, failed: 0, errors: [] };
  const badRow = (error: CsvError) => {
    report.rows++;
    report.failed++;
    const line = (error as CsvError & { lines?: number }).lines ?? 0;
    if (report.errors.length < 100) report.errors.push({ line, field: "row", message: error.message.split(":")[0] ?? "malformed row" });
  };
  const parser = parse({
    columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()),
    bom: true,
    skip_empty_lines: true,
    trim: true,
    info: true,
    relax_column_count: true,
    // A malformed row (a stray quote) is reported and skipped, as the client import does; it
    // answered 500 (found by the fuzzer).
    skip_records_with_error: true,
    on_skip: (error: CsvError | undefined) => {
      if (error) badRow(error);
    },
  });
  // `pipeline` passes a failing body on to the loop below (`pipe` would leave it unhandled).
  pipeline(source, parser, () => {});
  let header = false;
  for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    if (!header) {
      header = true;
      if (!("phone_number" in record)) throw invalid("phone_number", "the CSV header must name a phone_number column");
    }
    if (++report.rows > maxRows) throw invalid("body", `at most ${maxRows} rows`);
    try {
      const { created } = await service.block(record.phone_number ?? "", record.reason ?? "imported", actor);
      if (created) report.blocked++;
      else report.already++;
    } catch (error) {
      const problem = error as Problem;
      if (!problem.errors) throw error;
      report.failed++;
      if (report.errors.length < 100) report.errors.push({ line: info.lines, field: problem.errors[0]?.field ?? "row", message: problem.errors[0]?.message ?? problem.message });
    }
  }
  if (!header) throw invalid("body", "the CSV is empty; the first line must be a header with phone_number");
  return report;
}
