/** Client rows through Drizzle's builder. */
import { and, asc, eq, gt, like, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
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

/** Inserts a client unless its phone exists (then: null), as one prepared statement. */
export async function insertClient(
  db: Db,
  values: { phoneNumber: string; operatorCode: string; tag: string; timezone: string; createdAt: Date; updatedAt: Date },
): Promise<ClientRow | null> {
  const query = prepared(db, "clients_insert", () =>
    db
      .insert(clients)
      .values({
        phoneNumber: sql.placeholder("phoneNumber"),
        operatorCode: sql.placeholder("operatorCode"),
        tag: sql.placeholder("tag"),
        timezone: sql.placeholder("timezone"),
        createdAt: sql.placeholder("createdAt"),
        updatedAt: sql.placeholder("updatedAt"),
      })
      .onConflictDoNothing({ target: clients.phoneNumber })
      .returning()
      .prepare("clients_insert"),
  );
  const [row] = await query.execute(values);
  return row ?? null;
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
