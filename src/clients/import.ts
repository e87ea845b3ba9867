/**
 * CSV import of clients (SPEC §8 `POST /clients/import`), streamed: the body is parsed as it
 * arrives and written in batches of 5,000 rows, each one upsert plus one set-based planning pass,
 * so a million rows never sit in memory at once.
 *
 * The header names the columns: `phone_number` (required), `tag`, `timezone`, `operator_code`,
 * `attributes` (a JSON object of strings, as the export writes it), separated by commas or
 * semicolons (told from the header). A row whose phone is already known updates that client's tag
 * and time zone, and its attributes when the file has an `attributes` column (an empty cell: none). Invalid rows, and rows that are not valid CSV (a stray
 * quote), are skipped and reported (line, field, message); the others are imported.
 */
import { pipeline, Readable } from "node:stream";
import { CsvError, parse } from "csv-parse";
import { sql } from "drizzle-orm";
import type { Clock } from "../clock";
import { type Database, rowsOf } from "../db/client";
import { planClients } from "../dispatch/plan";
import { loadOpenMailings } from "../mailings/repo";
import { canonicalTimeZone } from "../time/wall-time";
import { invalid, type FieldError } from "../problems";
import { tagLengthMessage, tagTooLong } from "./model";
import { checkAttributes } from "./attributes";
import { normalizePhone } from "./phone";

export type ImportError = FieldError & { line: number };
export type ImportReport = {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  /** rows whose phone appeared again later in the same batch (the later row wins) */
  duplicates: number;
  failed: number;
  /** the first 100 problems */
  errors: ImportError[];
};

type Row = { phone_number: string; operator_code: string; tag: string; timezone: string; attributes: Record<string, string> | null };

const batchSize = 5000;
const maxErrors = 100;

export class ClientImporter {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  /** Imports a CSV stream; `onProgress` is called after every batch. */
  async import(
    source: Readable,
    onProgress: (report: ImportReport) => void = () => {},
  ): Promise<ImportReport> {
    const report: ImportReport = { rows: 0, created: 0, updated: 0, unchanged: 0, duplicates: 0, failed: 0, errors: [] };
    const zones = new Map<string, string | null>();
    const fail = (line: number, field: string, message: string) => {
      report.failed++;
      if (report.errors.length < maxErrors) report.errors.push({ line, field, message });
    };
    let parsedLines = 1;
    const badRow = (error: CsvError) => {
      const last = Number(error.lines);
      if (error.code === "CSV_QUOTE_NOT_CLOSED") {
        const lost = last > parsedLines + 1 ? `lines ${parsedLines + 1}–${last}` : `line ${parsedLines + 1}`;
        fail(parsedLines + 1, "row", `a quoted field opened here is never closed, so ${lost} could not be read; close the quote`);
      } else {
        fail(last, "row", csvProblem(error));
      }
      parsedLines = last;
    };
    const { delimiter, stream } = await sniffDelimiter(source);
    // The header as read: a file with a header and no readable row is not an empty file.
    let header: string[] | null = null;
    const parser = parse({
      columns: (names: string[]) => (header = names.map((h) => h.trim().toLowerCase())),
      delimiter,
      bom: true,
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      info: true,
      // A malformed row (a stray quote, an unclosed one) is reported and skipped; the import goes on.
      skip_records_with_error: true,
      on_skip: (error: CsvError | undefined) => {
        if (error) badRow(error);
      },
      // The last line the parser finished (it runs ahead of this loop): an unclosed quote is
      // reported where its row began, the line after, not at the end of the file it swallowed.
      on_record: (record: Record<string, string>, context: { lines: number }) => {
        parsedLines = context.lines;
        return record;
      },
    });
    // Unlike `pipe`, `pipeline` passes errors on: a body that fails mid-way (a client gone, a cut
    // upload) ends the loop below with that error, even if it failed while the header was read.
    pipeline(stream, parser, () => {});
    let batch = new Map<string, Row>();
    let sawHeader = false;
    let withAttributes = false;
    try {
      for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
        if (!sawHeader) {
          sawHeader = true;
          if (!("phone_number" in record)) throw missingPhoneColumn(Object.keys(record));
          withAttributes = "attributes" in record;
        }
        report.rows++;
        const line = info.lines;
        const phone = normalizePhone(record.phone_number ?? "");
        if (!phone.ok) {
          fail(line, "phone_number", phone.message);
          continue;
        }
        const code = (record.operator_code ?? "").trim();
        if (code && code !== phone.operatorCode) {
          fail(line, "operator_code", `does not match the phone number (${phone.operatorCode})`);
          continue;
        }
        const tag = record.tag ?? "";
        if (tagTooLong(tag)) {
          fail(line, "tag", tagLengthMessage);
          continue;
        }
        const zoneName = (record.timezone ?? "").trim() || "UTC";
        if (!zones.has(zoneName)) zones.set(zoneName, canonicalTimeZone(zoneName));
        const timezone = zones.get(zoneName);
        if (!timezone) {
          fail(line, "timezone", `"${zoneName}" is not an IANA time zone`);
          continue;
        }
        let attributes: Record<string, string> | null = null;
        if ((record.attributes ?? "").trim() !== "") {
          const checked = parseAttributes(record.attributes!);
          if ("errors" in checked) {
            fail(line, checked.errors[0]!.field, checked.errors[0]!.message);
            continue;
          }
          attributes = checked.value;
        }
        // A phone repeated inside one batch: the later row wins (one upsert cannot touch a row twice).
        if (batch.has(phone.phone)) report.duplicates++;
        batch.set(phone.phone, { phone_number: phone.phone, operator_code: phone.operatorCode, tag, timezone, attributes });
        if (batch.size >= batchSize) {
          await this.write([...batch.values()], report, withAttributes);
          batch = new Map();
          onProgress(report);
        }
      }
    } catch (error) {
      // A parse error the parser could not skip ends the reading, not the import: the rows read
      // so far are written and the error is reported at its line.
      if (!(error instanceof CsvError)) throw error;
      badRow(error);
    }
    if (batch.size > 0) await this.write([...batch.values()], report, withAttributes);
    if (!header) throw invalid("body", "the CSV is empty; the first line must be a header with phone_number");
    if (!sawHeader && !(header as string[]).includes("phone_number")) throw missingPhoneColumn(header);
    onProgress(report);
    return report;
  }

  private async write(rows: Row[], report: ImportReport, withAttributes: boolean): Promise<void> {
    const now = this.clock.now();
    const at = now.toISOString();
    // The writes pool (see Database.writes): a batch waiting for a planning holds none of the others.
    await this.database.writes.transaction(async (tx) => {
      // One row of arrays rather than a row per client: the same data, but a few values to decode
      // instead of 5,000 protocol rows (on embedded PGlite each row is decoded into several
      // objects in this process: about 1.4 million for a 100,000-row import, issue 16 target 3).
      const [written] = await rowsOf<{ created_ids: number[] | null; created_zones: string[] | null; updated_ids: number[] | null; updated_zones: string[] | null; n: number }>(
        tx,
        sql`
        with w as (
          insert into clients (phone_number, operator_code, tag, timezone, attributes, created_at, updated_at)
          select r.phone_number, r.operator_code, r.tag, r.timezone, coalesce(r.attributes, '{}'::jsonb), ${at}::timestamptz, ${at}::timestamptz
          from jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb)
            as r(phone_number text, operator_code text, tag text, timezone text, attributes jsonb)
          on conflict (phone_number) do update
            set tag = excluded.tag, timezone = excluded.timezone, updated_at = excluded.updated_at,
              attributes = case when ${withAttributes} then excluded.attributes else clients.attributes end
            where clients.tag is distinct from excluded.tag or clients.timezone is distinct from excluded.timezone
              or (${withAttributes} and clients.attributes is distinct from excluded.attributes)
          returning id, timezone, (xmax = 0) as created)
        select array_agg(id order by id) filter (where created) as created_ids,
          array_agg(timezone order by id) filter (where created) as created_zones,
          array_agg(id order by id) filter (where not created) as updated_ids,
          array_agg(timezone order by id) filter (where not created) as updated_zones,
          count(*)::int as n
        from w`,
      );
      const clientsOf = (ids: number[] | null, zones: string[] | null) => (ids ?? []).map((id, i) => ({ id, timezone: zones![i]! }));
      const created = clientsOf(written!.created_ids, written!.created_zones);
      const updated = clientsOf(written!.updated_ids, written!.updated_zones);
      report.created += created.length;
      report.updated += updated.length;
      report.unchanged += rows.length - written!.n;
      const open = await loadOpenMailings(tx, now);
      if (open.length > 0) {
        await planClients(tx, created, open, now, { fresh: true });
        await planClients(tx, updated, open, now);
      }
    });
  }
}

/**
 * The header decides the separator: `;` (what spreadsheets write in locales with a decimal comma)
 * or a tab when the header has no comma but one of those. The first chunks are read ahead to see
 * the header and put back (`unshift`), so the parser still reads the stream itself, with its
 * backpressure: wrapping the stream in an async generator instead raised the RSS peak of a
 * 1,000,000-row import from 166 to 250 MB (bench/suites/import.ts).
 */
async function sniffDelimiter(stream: Readable): Promise<{ delimiter: string; stream: Readable }> {
  const head = await readHead(stream);
  const delimiter = delimiterOf(head.subarray(0, Math.max(0, head.indexOf(10)) || head.length).toString("utf8"));
  // The whole body was shorter than a line or two: the stream has ended, hand on what was read.
  return { delimiter, stream: stream.readableEnded ? Readable.from([head]) : stream };
}

/** The separator a header line uses: a comma, else a semicolon, else a tab (a comma if none). */
export function delimiterOf(headerLine: string): string {
  return headerLine.includes(",") ? "," : headerLine.includes(";") ? ";" : headerLine.includes("\t") ? "\t" : ",";
}

/** Reads until the first newline (or 64 KiB), then puts what it read back at the front of the stream. */
function readHead(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Failed before anyone listened (a cut upload is parsed at once): its events are gone, its error kept.
    if (stream.errored) return reject(stream.errored);
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      stream.off("readable", onReadable).off("end", finish).off("error", reject);
      const head = Buffer.concat(chunks);
      if (!stream.readableEnded && head.length > 0) stream.unshift(head);
      resolve(head);
    };
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = stream.read()) !== null; ) {
        chunk = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
        chunks.push(chunk);
        size += chunk.length;
        if (chunk.includes(10) || size >= 64 * 1024) return finish();
      }
    };
    stream.on("readable", onReadable).once("end", finish).once("error", reject);
  });
}

/** A header without phone_number; a one-column header naming it among other words hints at the separator. */
function missingPhoneColumn(columns: string[]) {
  const only = columns.length === 1 ? columns[0]! : "";
  if (only.includes("phone_number")) {
    return invalid("phone_number", `the header "${only}" is one column: separate the columns with commas or semicolons`);
  }
  return invalid("phone_number", `the CSV header must name a phone_number column (found: ${columns.join(", ") || "nothing"})`);
}

/** csv-parse's error, said for the person who has to fix the file. */
function csvProblem(error: CsvError): string {
  switch (error.code) {
    case "INVALID_OPENING_QUOTE":
      return 'a quote inside an unquoted field; quote the whole field and double the quotes inside it ("ab""c")';
    case "CSV_INVALID_CLOSING_QUOTE":
    case "CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE":
      return 'text after the closing quote of a field; quote the whole field and double the quotes inside it ("ab""c")';
    default:
      return `not valid CSV: ${error.message}`;
  }
}

/** An `attributes` cell: a JSON object of strings (clients/attributes.ts). */
function parseAttributes(cell: string): ReturnType<typeof checkAttributes> {
  let value: unknown;
  try {
    value = JSON.parse(cell);
  } catch {
    return { errors: [{ field: "attributes", message: 'must be a JSON object of strings, such as {"name":"Anna"}' }] };
  }
  return checkAttributes(value);
}
