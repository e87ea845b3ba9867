/** Client rows through Drizzle's builder. */
import { and, asc, eq, gt, like, type SQL } from "drizzle-orm";
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

export async function listClients(
  db: Db,
  filter: ClientFilter,
  limit: number,
  cursor: number | null,
): Promise<ClientRow[]> {
  const where: SQL[] = [];
  if (filter.tag !== undefined) where.push(eq(clients.tag, filter.tag));
  if (filter.operatorCode !== undefined) where.push(eq(clients.operatorCode, filter.operatorCode));
  if (filter.q) where.push(like(clients.phoneNumber, `%${filter.q}%`));
  if (cursor !== null) where.push(gt(clients.id, cursor));
  return db
    .select()
    .from(clients)
    .where(and(...where))
    .orderBy(asc(clients.id))
    .limit(limit + 1);
}

