/**
 * Mailings (SPEC §4): validation of the wall-clock window, filters and send window; planning on
 * create and re-planning on PATCH, pause, resume and cancel, each in one transaction.
 */
import { Temporal } from "@js-temporal/polyfill";
import { eq } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { mailings } from "../db/schema";
import {
  cancelMailingMessages,
  deleteMailingMessages,
  holdMailingMessages,
  planMailing,
  analyzeAfterRows,
  refreshStatistics,
} from "../dispatch/plan";
import type { Signals } from "../dispatch/signals";
import { tagLengthMessage, tagTooLong } from "../clients/model";
import { type FieldError, invalidFields, notFound, Problem } from "../problems";
import type { MailingCreate, MailingPatch, MailingStatus, MailingView } from "./model";
import { findMailing, getMailing, listMailings, type MailingRow, type MailingWithStatus, toPlannable, toView } from "./repo";
import {
  earliestWallTime,
  earliestZone,
  formatWallTime,
  isSupportedWallTime,
  latestWallTime,
  latestZone,
  parseWallTime,
  wallToEpoch,
} from "../time/wall-time";
import { isClockTime } from "../time/send-window";
import { pageOf } from "../http/params";
import { longestRendering, unknownPlaceholders } from "./personalise";

type Tx = Parameters<Parameters<Database["db"]["transaction"]>[0]>[0];

type Validated = {
  text: string;
  start: Temporal.PlainDateTime;
  end: Temporal.PlainDateTime;
  tagsFilter: string[];
  codesFilter: string[];
  windowFrom: string | null;
  windowTo: string | null;
};

/** The stored mailing as the same shape a create body has, so a PATCH can be merged onto it. */
function asInput(row: MailingRow): MailingCreate {
  return {
    text: row.text,
    start_time: row.startTime,
    end_time: row.endTime,
    tags_filter: row.tagsFilter,
    codes_filter: row.codesFilter,
    send_window: row.windowFrom && row.windowTo ? { from: row.windowFrom, to: row.windowTo } : null,
  };
}

const range = `from ${formatWallTime(earliestWallTime)} to ${formatWallTime(latestWallTime)}`;

/**
 * The offset after a time (`…T09:00:00+05:00`), which is ignored, but must still be one: hours
 * 00–23 and minutes 00–59 as RFC 3339 writes them. `+25:00` was quietly accepted before.
 */
const trailingOffset = /\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-](\d{2})(?::?(\d{2}))?(?:\[[^\]]*\])?$/;

function offsetIsValid(input: string): boolean {
  const match = trailingOffset.exec(input.trim());
  return !match || (Number(match[1]) <= 23 && Number(match[2] ?? 0) <= 59);
}

/** A wall-clock date-time field, or null with the reason added to `errors`. */
function wallTime(input: string, field: string, example: string, errors: FieldError[]): Temporal.PlainDateTime | null {
  const value = parseWallTime(input);
  if (!value) {
    errors.push({ field, message: `must be a date-time such as ${example}` });
    return null;
  }
  if (!offsetIsValid(input)) {
    errors.push({ field, message: `has an offset no clock has; an offset must be ±HH:MM up to ±23:59 (it is ignored: ${example})` });
    return null;
  }
  if (!isSupportedWallTime(value)) {
    errors.push({ field, message: `must be ${range}` });
    return null;
  }
  return value;
}

/**
 * Validates a full mailing. `checkOver` applies the "window already over everywhere" rule, which
 * only makes sense when the times are being set.
 */
function validate(input: MailingCreate, now: Date, checkOver: boolean): Validated {
  const errors: FieldError[] = [];
  const text = input.text;
  if (text.trim().length === 0) errors.push({ field: "text", message: "must not be empty" });
  const start = wallTime(input.start_time, "start_time", "2026-12-01T09:00:00", errors);
  const end = wallTime(input.end_time, "end_time", "2026-12-01T21:00:00", errors);
  if (start && end && Temporal.PlainDateTime.compare(end, start) <= 0) {
    errors.push({ field: "end_time", message: "must be after start_time" });
  } else if (end && checkOver) {
    const lastWallNow = Temporal.Instant.fromEpochMilliseconds(now.getTime())
      .toZonedDateTimeISO(latestZone)
      .toPlainDateTime();
    if (Temporal.PlainDateTime.compare(end, lastWallNow) <= 0) {
      errors.push({ field: "end_time", message: "is already over in every time zone" });
    }
  }
  const tagsFilter = [...new Set(input.tags_filter ?? [])];
  (input.tags_filter ?? []).forEach((tag, i) => {
    if (tagTooLong(tag)) errors.push({ field: `tags_filter.${i}`, message: tagLengthMessage });
  });
  const codesFilter: string[] = [];
  (input.codes_filter ?? []).forEach((code, i) => {
    const value = String(code);
    if (!/^\d{3}$/.test(value)) errors.push({ field: `codes_filter.${i}`, message: "must be a 3-digit operator code, such as 910" });
    else if (!codesFilter.includes(value)) codesFilter.push(value);
  });
  let windowFrom: string | null = null;
  let windowTo: string | null = null;
  if (input.send_window) {
    const { from, to } = input.send_window;
    if (!isClockTime(from)) errors.push({ field: "send_window.from", message: "must be HH:MM (00:00–23:59)" });
    if (!isClockTime(to)) errors.push({ field: "send_window.to", message: "must be HH:MM (00:00–23:59)" });
    if (isClockTime(from) && from === to) {
      errors.push({ field: "send_window.to", message: "must differ from send_window.from" });
    }
    windowFrom = from;
    windowTo = to;
  }
  if (errors.length > 0) throw invalidFields(errors);
  return { text, start: start!, end: end!, tagsFilter, codesFilter, windowFrom, windowTo };
}

function columns(v: Validated) {
  return {
    text: v.text,
    startTime: formatWallTime(v.start),
    endTime: formatWallTime(v.end),
    startsAt: new Date(wallToEpoch(v.start, earliestZone)),
    endsAt: new Date(wallToEpoch(v.end, latestZone)),
    tagsFilter: v.tagsFilter,
    codesFilter: v.codesFilter,
    windowFrom: v.windowFrom,
    windowTo: v.windowTo,
  };
}

function cancelledConflict(id: number): Problem {
  return new Problem(409, `mailing ${id} is cancelled and cannot change`, [
    { field: "status", message: "cancelled" },
  ]);
}

export class MailingService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly signals: Signals,
  ) {}

  async create(input: MailingCreate): Promise<MailingView> {
    const now = this.clock.now();
    const valid = validate(input, now, true);
    const unknown = await unknownPlaceholders(this.database.db, valid.text, valid);
    if (unknown.length > 0) throw invalidFields(unknown);
    const { id, planned } = await this.database.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(mailings)
        .values({ ...columns(valid), createdAt: now, updatedAt: now })
        .returning();
      return { id: row!.id, planned: await planMailing(tx, toPlannable(row!), now, { fresh: true }) };
    });
    const view = await this.get(id);
    this.signals.wake();
    // Best effort, after the wake-up (the first claims do not wait for it): if it fails, autovacuum
    // analyzes later, as before.
    if (planned >= analyzeAfterRows) void refreshStatistics(this.database.db).catch(() => {});
    return view;
  }

  /** One mailing, with the SMS length of its longest rendering (lists leave that out). */
  async get(id: number): Promise<MailingView> {
    const row = await getMailing(this.database.db, id, this.clock.now());
    if (!row) throw notFound("mailing", id);
    return { ...toView(row), sms: await longestRendering(this.database.db, row.text, row) };
  }

  async list(status: MailingStatus | undefined, limit: number, cursor: number | null) {
    const rows = await listMailings(this.database.db, status, limit, cursor, this.clock.now());
    return pageOf(rows, limit, toView);
  }

  async update(id: number, patch: MailingPatch): Promise<MailingView> {
    const now = this.clock.now();
    await this.database.db.transaction(async (tx) => {
      const current = await findMailing(tx, id, now);
      if (!current) throw notFound("mailing", id);
      if (current.cancelledAt) throw cancelledConflict(id);
      const merged = { ...asInput(current), ...stripUndefined(patch) };
      const timesChanged = patch.start_time !== undefined || patch.end_time !== undefined;
      const valid = validate(merged, now, timesChanged);
      if (patch.text !== undefined || patch.tags_filter !== undefined || patch.codes_filter !== undefined) {
        const unknown = await unknownPlaceholders(tx, valid.text, valid);
        if (unknown.length > 0) throw invalidFields(unknown);
      }
      const [row] = await tx
        .update(mailings)
        .set({ ...columns(valid), updatedAt: now })
        .where(eq(mailings.id, id))
        .returning();
      await planMailing(tx, toPlannable(row!), now);
    });
    const view = await this.get(id);
    this.signals.mailingChanged(id);
    this.signals.wake();
    return view;
  }

  async remove(id: number): Promise<void> {
    await this.database.db.transaction(async (tx) => {
      // The mailing's row, then client writes held back and the messages gone (deleteMailingMessages),
      // then the row. Deleting the row first would lock its counter rows (mailings_forget_counts)
      // before waiting for client writes, which may be about to count a message of this mailing in
      // those rows: a deadlock.
      const [found] = await tx.select({ id: mailings.id }).from(mailings).where(eq(mailings.id, id)).for("update");
      if (!found) throw notFound("mailing", id);
      await deleteMailingMessages(tx, id);
      await tx.delete(mailings).where(eq(mailings.id, id));
    });
    this.signals.mailingChanged(id);
  }

  /** Stops the mailing for good; idempotent. */
  cancel(id: number): Promise<MailingView> {
    return this.transition(id, { whenCancelled: "keep", wake: false }, async (tx, current, now) => {
      if (current.cancelledAt) return;
      await tx.update(mailings).set({ cancelledAt: now, updatedAt: now }).where(eq(mailings.id, id));
      await cancelMailingMessages(tx, id, now);
    });
  }

  /** Holds every waiting message; idempotent. */
  pause(id: number): Promise<MailingView> {
    return this.transition(id, { whenCancelled: "refuse", wake: false }, async (tx, current, now) => {
      if (current.paused) return;
      await tx.update(mailings).set({ paused: true, updatedAt: now }).where(eq(mailings.id, id));
      await holdMailingMessages(tx, id, now);
    });
  }

  /** Re-plans the held messages; those already due go out at once. Idempotent. */
  resume(id: number): Promise<MailingView> {
    return this.transition(id, { whenCancelled: "refuse", wake: true }, async (tx, current, now) => {
      if (!current.paused) return;
      const [row] = await tx.update(mailings).set({ paused: false, updatedAt: now }).where(eq(mailings.id, id)).returning();
      await planMailing(tx, toPlannable(row!), now);
    });
  }

  /**
   * The frame of pause, resume and cancel: one transaction on the current row (404 if it is gone,
   * 409 for a cancelled one unless `keep`), then the response, then the signals.
   */
  private async transition(
    id: number,
    options: { whenCancelled: "keep" | "refuse"; wake: boolean },
    apply: (tx: Tx, current: MailingWithStatus, now: Date) => Promise<void>,
  ): Promise<MailingView> {
    const now = this.clock.now();
    await this.database.db.transaction(async (tx) => {
      const current = await findMailing(tx, id, now);
      if (!current) throw notFound("mailing", id);
      if (current.cancelledAt && options.whenCancelled === "refuse") throw cancelledConflict(id);
      await apply(tx, current, now);
    });
    const view = await this.get(id);
    this.signals.mailingChanged(id);
    if (options.wake) this.signals.wake();
    return view;
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
