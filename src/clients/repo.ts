/** Client rows through Drizzle's builder. */
import { and, asc, eq, gt, like, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
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

type ListShape = ReturnType<typeof prepareList>;

/** Prepared list queries, per database and per combination of filters (at most 16 shapes). */
const listShapes = new WeakMap<Db, Map<string, ListShape>>();

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

/**
 * One page of clients (limit + 1 rows, to tell whether there is a next page). The query is built
 * once per shape and kept prepared: building it with Drizzle cost about as much CPU as running it
 * (issue 4, target 5).
 */
export async function listClients(
  db: Db,
  filter: ClientFilter,
  limit: number,
  cursor: number | null,
): Promise<ClientRow[]> {
  const shape = { tag: filter.tag !== undefined, code: filter.operatorCode !== undefined, q: !!filter.q, cursor: cursor !== null };
  const key = `clients_list_${Number(shape.tag)}${Number(shape.code)}${Number(shape.q)}${Number(shape.cursor)}`;
  let shapes = listShapes.get(db);
  if (!shapes) listShapes.set(db, (shapes = new Map()));
  let query = shapes.get(key);
  if (!query) shapes.set(key, (query = prepareList(db, shape, key)));
  return query.execute({ tag: filter.tag, code: filter.operatorCode, q: `%${filter.q ?? ""}%`, cursor, limit: limit + 1 });
}
