/**
 * A mailing's messages as CSV (SPEC §9: results exported), streamed: one status at a time, 5,000
 * rows a query by id within the (mailing_id, status, id) index, so 10,000,000 messages never sit in
 * memory and no query walks the primary key (an `order by id` over all statuses did, see
 * StatsService.messages).
 */
import { sql } from "drizzle-orm";
import { csvField } from "../clients/export";
import type { Database } from "../db/client";
import { messageStates, type MessageState } from "../dispatch/states";

export const messageExportColumns = ["id", "phone_number", "status", "attempts", "due_at", "sent_at", "last_error", "provider_message_id"] as const;
const pageSize = 5000;

type Row = { id: number; phone_number: string; status: string; attempts: number; due_at: string; sent_at: string | null; last_error: string | null; provider_message_id: string | null };

export function exportMessages(database: Database, mailingId: number, status?: MessageState): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const states = status ? [status] : [...messageStates];
  let cursor = 0;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(messageExportColumns.join(",") + "\r\n"));
        return;
      }
      // Loops until it has something to give: a pull that enqueues nothing is not called again.
      for (;;) {
        const state = states[0];
        if (state === undefined) return controller.close();
        const rows = await database.rows<Row>(sql`
          select id, phone_number, status, attempts,
            to_char(due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as due_at,
            to_char(sent_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as sent_at, last_error, provider_message_id
          from messages where mailing_id = ${mailingId} and status = ${state} and id > ${cursor}
          order by id limit ${pageSize}`);
        if (rows.length < pageSize) {
          states.shift();
          cursor = 0;
        } else cursor = rows[rows.length - 1]!.id;
        if (rows.length > 0) {
          const lines = rows.map((m) => [String(m.id), m.phone_number, m.status, String(m.attempts), m.due_at, m.sent_at ?? "", m.last_error ?? "", m.provider_message_id ?? ""].map(csvField).join(",") + "\r\n");
          return controller.enqueue(encoder.encode(lines.join("")));
        }
      }
    },
  });
}
