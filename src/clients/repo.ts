/** Client rows through Drizzle's builder. */
import { and, asc, eq, gt, like, sql, type SQL } from "drizzle-orm";
import { type Db, rowsOf } from "../db/client";
import { prepared } from "../db/prepared";
import { clients } from "../db/schema";
import type { ClientView } from "./model";

export type ClientRow = typeof clients.$inferSelect;
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type Writer = Db | Tx;

export function toView(row: ClientRow): ClientView {
  return {
    id: row.id,
    phone_number: row.phoneNumber,
    operator_code: row.operatorCode,
    tag: row.tag,
    timezone: row.timezone,
    attributes: row.attributes ?? {},
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export async function findClient(db: Writer, id: number): Promise<ClientRow | null> {
  const [row] = await db.select().from(clients).where(eq(clients.id, id)).limit(1);
  return row ?? null;
}

export async function findClientByPhone(db: Writer, phone: string): Promise<ClientRow | null> {
  const [row] = await db.select().from(clients).where(eq(clients.phoneNumber, phone)).limit(1);
  return row ?? null;
}

export type ClientFilter = { tag?: string; operatorCode?: string; q?: string };

/**
 * Inserts a client as one prepared statement, unless its phone exists or an open mailing (not
 * cancelled, not over everywhere at `createdAt`) matches its tag and operator code: then nothing is
 * written and the result is null. The caller decides on this path from a cached list of open
 * mailings; the guard re-checks that list against the database in the same statement, so a cache
 * that has not yet heard of a new mailing cannot leave the client unplanned (the caller then takes
 * the transaction path, which also tells a duplicate phone apart).
 */
export async function insertClient(
  db: Db,
  values: { phoneNumber: string; operatorCode: string; tag: string; timezone: string; attributes: Record<string, string>; createdAt: Date; updatedAt: Date },
): Promise<ClientRow | null> {
  // Raw SQL: Drizzle's insert-select would name the generated id column. Run as a named prepared
  // statement like every other (db/client.ts).
  const created = values.createdAt.toISOString();
  const [row] = await rowsOf<{
    id: number;
    phone_number: string;
    operator_code: string;
    tag: string;
    timezone: string;
    attributes: Record<string, string> | string;
    created_at: string | Date;
    updated_at: string | Date;
  }>(
    db,
    sql`insert into clients (phone_number, operator_code, tag, timezone, attributes, created_at, updated_at)
      select ${values.phoneNumber}::text, ${values.operatorCode}::text, ${values.tag}::text, ${values.timezone}::text,
        ${JSON.stringify(values.attributes)}::text::jsonb, ${created}::timestamptz, ${values.updatedAt.toISOString()}::timestamptz
      where not exists (
        select 1 from mailings m
        where m.cancelled_at is null and m.ends_at > ${created}::timestamptz
          and (cardinality(m.tags_filter) = 0 or ${values.tag}::text = any(m.tags_filter))
          and (cardinality(m.codes_filter) = 0 or ${values.operatorCode}::text = any(m.codes_filter)))
      on conflict (phone_number) do nothing
      returning id, phone_number, operator_code, tag, timezone, attributes, created_at, updated_at`,
  );
  if (!row) return null;
  return {
    id: row.id,
    phoneNumber: row.phone_number,
    operatorCode: row.operator_code,
    tag: row.tag,
    timezone: row.timezone,
    // postgres.js parses jsonb; PGlite too, but a text-cast driver would not: accept both.
    attributes: typeof row.attributes === "string" ? JSON.parse(row.attributes) : row.attributes,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** findClient outside a transaction, prepared. */
export async function getClient(db: Db, id: number): Promise<ClientRow | null> {
  const query = prepared(db, "clients_get", () =>
    db.select().from(clients).where(eq(clients.id, sql.placeholder("id"))).limit(1).prepare("clients_get"),
  );
  const [row] = await query.execute({ id });
  return row ?? null;
}

function prepareList(db: Db, shape: { tag: boolean; code: boolean; q: boolean; cursor: boolean }, name: string) {
  const where: SQL[] = [];
  if (shape.tag) where.push(eq(clients.tag, sql.placeholder("tag")));
  if (shape.code) where.push(eq(clients.operatorCode, sql.placeholder("code")));
  if (shape.q) where.push(like(clients.phoneNumber, sql.placeholder("q")));
  if (shape.cursor) where.push(gt(clients.id, sql.placeholder("cursor")));
  return db
    .select()
    .from(clients)
    .where(and(...where))
    .orderBy(asc(clients.id))
    .limit(sql.placeholder("limit"))
    .prepare(name);
}

/** One page of clients (limit + 1 rows, to tell whether there is a next page); prepared per filter shape. */
export async function listClients(
  db: Db,
  filter: ClientFilter,
  limit: number,
  cursor: number | null,
): Promise<ClientRow[]> {
  const shape = { tag: filter.tag !== undefined, code: filter.operatorCode !== undefined, q: !!filter.q, cursor: cursor !== null };
  const key = `clients_list_${Number(shape.tag)}${Number(shape.code)}${Number(shape.q)}${Number(shape.cursor)}`;
  const query = prepared(db, key, () => prepareList(db, shape, key));
  return query.execute({ tag: filter.tag, code: filter.operatorCode, q: `%${filter.q ?? ""}%`, cursor, limit: limit + 1 });
}
