/**
 * Before a CSV import from the browser (issue 11): how many rows the file has, how many are
 * valid, and how many of those clients match a mailing that is open now — they will be sent to
 * as soon as the import commits, so the person is asked to confirm first. Reads only.
 */
import { parse } from "csv-parse/sync";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { loadOpenMailings } from "../mailings/repo";
import { normalizePhone } from "./phone";
import { delimiterOf } from "./import";

export type ImportCheck =
  | { ok: true; rows: number; valid: number; matching: number; mailings: number }
  | { ok: false; message: string };

export class ImportChecker {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  async check(csv: string): Promise<ImportCheck> {
    let records: Record<string, string>[];
    try {
      records = parse(csv, {
        columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
        // As the import reads it (import.ts): the separator told from the header, malformed rows
        // skipped (the import reports them) instead of refusing the whole file.
        delimiter: delimiterOf(csv.slice(0, Math.max(0, csv.indexOf("\n")) || csv.length)),
        skip_records_with_error: true,
        bom: true,
        skip_empty_lines: true,
        trim: true,
        relax_column_count: true,
      });
    } catch (error) {
      return { ok: false, message: `not valid CSV: ${(error as Error).message}` };
    }
    if (records.length > 0 && !("phone_number" in records[0]!)) return { ok: false, message: "the header must name a phone_number column" };
    const open = (await loadOpenMailings(this.database.db, this.clock.now())).filter((m) => !m.paused);
    const concerned = new Set<number>();
    let valid = 0;
    let matching = 0;
    for (const record of records) {
      const phone = normalizePhone(record.phone_number ?? "");
      if (!phone.ok) continue;
      valid++;
      const tag = record.tag ?? "";
      let matched = false;
      for (const m of open) {
        if ((m.tagsFilter.length === 0 || m.tagsFilter.includes(tag)) && (m.codesFilter.length === 0 || m.codesFilter.includes(phone.operatorCode))) {
          concerned.add(m.id);
          matched = true;
        }
      }
      if (matched) matching++;
    }
    return { ok: true, rows: records.length, valid, matching, mailings: concerned.size };
  }
}
