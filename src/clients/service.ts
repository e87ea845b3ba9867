/**
 * Client directory (SPEC §3): validation, uniqueness, and keeping each client's messages planned as
 * the client changes. Every write runs in one transaction with its re-planning.
 */
import { eq, inArray } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { sqlState, uniqueViolation } from "../db/errors";
import { clients } from "../db/schema";
import { cancelClientMessages, type PlannableMailing, planClient } from "../dispatch/plan";
import type { Signals } from "../dispatch/signals";
import type { OpenMailingsCache } from "../mailings/open-cache";
import { loadOpenMailings } from "../mailings/repo";
import { canonicalTimeZone } from "../time/wall-time";
import { type FieldError, invalidFields, notFound, Problem } from "../problems";
import { type ClientCreate, type ClientPatch, type ClientView, tagLengthMessage, tagTooLong } from "./model";
import { checkAttributes } from "./attributes";
import { normalizePhone } from "./phone";
import { type ClientFilter, findClient, findClientByPhone, getClient, insertClient, listClients, toView } from "./repo";
import { pageOf } from "../http/params";

type Fields = { phoneNumber?: string; operatorCode?: string; tag?: string; timezone?: string; attributes?: Record<string, string> };

/** operator_code given without a phone: checked against the stored phone by the caller. */
type Checked = { fields: Fields; codeToCheck: string | null };

/** Checks the fields given and returns their stored form, or throws one 422 naming every bad field. */
function validate(input: ClientPatch, requirePhone: boolean): Checked {
  const errors: FieldError[] = [];
  const out: Fields = {};
  let codeToCheck: string | null = null;
  if (input.phone_number !== undefined) {
    const phone = normalizePhone(input.phone_number);
    if (phone.ok) {
      out.phoneNumber = phone.phone;
      out.operatorCode = phone.operatorCode;
    } else errors.push({ field: "phone_number", message: phone.message });
  } else if (requirePhone) errors.push({ field: "phone_number", message: "is required" });
  if (input.operator_code !== undefined) {
    const code = String(input.operator_code);
    if (!/^\d{3}$/.test(code)) errors.push({ field: "operator_code", message: "must be a 3-digit operator code, such as 910" });
    else if (input.phone_number === undefined) codeToCheck = code;
    else if (out.operatorCode !== undefined && out.operatorCode !== code) {
      errors.push({ field: "operator_code", message: `does not match the phone number (${out.operatorCode})` });
    }
  }
  if (input.tag !== undefined) {
    if (tagTooLong(input.tag)) errors.push({ field: "tag", message: tagLengthMessage });
    else out.tag = input.tag;
  }
  if (input.timezone !== undefined) {
    const zone = canonicalTimeZone(input.timezone);
    if (zone) out.timezone = zone;
    else errors.push({ field: "timezone", message: `"${input.timezone}" is not an IANA time zone` });
  }
  if (input.attributes !== undefined) {
    const checked = checkAttributes(input.attributes);
    if ("errors" in checked) errors.push(...checked.errors);
    else out.attributes = checked.value;
  }
  if (errors.length > 0) throw invalidFields(errors);
  return { fields: out, codeToCheck };
}

/** The fields' checks alone (nothing is read or written): for a form that refused one field itself. */
export const checkClientFields = (input: ClientPatch, requirePhone: boolean): void => void validate(input, requirePhone);

function duplicatePhone(phone: string): Problem {
  return new Problem(409, `a client with phone number ${phone} already exists`, [
    { field: "phone_number", message: "already exists" },
  ]);
}

export class ClientService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly openMailings: OpenMailingsCache,
    /** `clientChanged` after a client is deleted or changed: claimed sends read it again (SPEC §3) */
    private readonly signals: Pick<Signals, "clientChanged">,
  ) {}

  /**
   * One statement when no open mailing can concern the new client (the common case of a bulk
   * directory load): `INSERT … SELECT … WHERE NOT EXISTS (matching open mailing) ON CONFLICT DO
   * NOTHING RETURNING`. Which path to try comes from a per-process cache of the open mailings (see
   * OpenMailingsCache); the statement re-checks it against the database. Otherwise (a mailing
   * matches, the cache was stale, or the phone exists) the insert and the planning share one
   * transaction that reads the open mailings afresh. A mailing being planned meanwhile holds client
   * writes back until it commits (planMailing), so the two cannot miss each other.
   */
  async create(input: ClientCreate): Promise<ClientView> {
    const { fields } = validate(input, true);
    const now = this.clock.now();
    const values = {
      phoneNumber: fields.phoneNumber!,
      operatorCode: fields.operatorCode!,
      tag: fields.tag ?? "",
      timezone: fields.timezone ?? "UTC",
      attributes: fields.attributes ?? {},
      createdAt: now,
      updatedAt: now,
    };
    const matches = (m: PlannableMailing) =>
      (m.tagsFilter.length === 0 || m.tagsFilter.includes(values.tag)) &&
      (m.codesFilter.length === 0 || m.codesFilter.includes(values.operatorCode));
    try {
      if (!(await this.openMailings.get(now)).some(matches)) {
        const row = await insertClient(this.database.writes, values);
        if (row) return toView(row);
        // A duplicate phone, or a mailing the cache did not know yet: the transaction tells which.
        this.openMailings.invalidate();
      }
      return await this.database.writes.transaction(async (tx) => {
        const [row] = await tx.insert(clients).values(values).onConflictDoNothing({ target: clients.phoneNumber }).returning();
        if (!row) throw duplicatePhone(values.phoneNumber);
        const open = (await loadOpenMailings(tx, now)).filter(matches);
        if (open.length > 0) await planClient(tx, row, open, now, { fresh: true });
        return toView(row);
      });
    } catch (error) {
      if (sqlState(error) === uniqueViolation) throw duplicatePhone(fields.phoneNumber!);
      throw error;
    }
  }

  async get(id: number): Promise<ClientView> {
    const row = await getClient(this.database.db, id);
    if (!row) throw notFound("client", id);
    return toView(row);
  }

  /** The time zones of these clients (for the messages of a mailing page); deleted ones are absent. */
  async timezones(ids: number[]): Promise<Map<number, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.database.db
      .select({ id: clients.id, timezone: clients.timezone })
      .from(clients)
      .where(inArray(clients.id, ids));
    return new Map(rows.map((r) => [r.id, r.timezone]));
  }

  async list(filter: ClientFilter, limit: number, cursor: number | null) {
    const rows = await listClients(this.database.db, filter, limit, cursor);
    return pageOf(rows, limit, toView);
  }

  async update(id: number, input: ClientPatch): Promise<ClientView> {
    const { fields, codeToCheck } = validate(input, false);
    const now = this.clock.now();
    try {
      return await this.database.writes.transaction(async (tx) => {
        const current = await findClient(tx, id);
        if (!current) throw notFound("client", id);
        if (codeToCheck !== null && codeToCheck !== current.operatorCode) {
          throw invalidFields([
            { field: "operator_code", message: `does not match the phone number (${current.operatorCode})` },
          ]);
        }
        if (fields.phoneNumber && fields.phoneNumber !== current.phoneNumber) {
          if (await findClientByPhone(tx, fields.phoneNumber)) throw duplicatePhone(fields.phoneNumber);
        }
        const [row] = await tx
          .update(clients)
          .set({ ...fields, updatedAt: now })
          .where(eq(clients.id, id))
          .returning();
        const replan =
          row!.phoneNumber !== current.phoneNumber || row!.tag !== current.tag || row!.timezone !== current.timezone;
        if (replan) await planClient(tx, row!, await loadOpenMailings(tx, now), now);
        return { view: toView(row!), replan };
      }).then(({ view, replan }) => {
        if (replan) this.signals.clientChanged();
        return view;
      });
    } catch (error) {
      if (sqlState(error) === uniqueViolation) throw duplicatePhone(fields.phoneNumber!);
      throw error;
    }
  }

  async remove(id: number): Promise<void> {
    const now = this.clock.now();
    await this.database.writes.transaction(async (tx) => {
      const deleted = await tx.delete(clients).where(eq(clients.id, id)).returning({ id: clients.id });
      if (deleted.length === 0) throw notFound("client", id);
      await cancelClientMessages(tx, id, now);
    });
    this.signals.clientChanged();
  }
}
