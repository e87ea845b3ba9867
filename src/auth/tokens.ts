/**
 * Personal API tokens (SPEC §8). The secret is returned once, at creation; the database keeps its
 * SHA-256. A token acts with its creator's role; tokens made with ADMIN_API_KEY are admin tokens.
 */
import { and, desc, eq, isNull, lt } from "drizzle-orm";
import type { Database } from "../db/client";
import { apiTokens, users } from "../db/schema";
import { notFound } from "../problems";
import type { Actor, Role } from "./actor";
import { randomSecret, sha256Hex } from "./crypto";

export const tokenPrefix = "nst_";

export type TokenView = {
  id: number;
  name: string;
  role: Role;
  user_id: number | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
};

type TokenRow = typeof apiTokens.$inferSelect;

function view(row: TokenRow): TokenView {
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    user_id: row.userId,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

export class TokenService {
  constructor(private readonly database: Database) {}

  /** Creates a token for the actor; the only time the secret is ever returned. */
  async create(actor: Actor, name: string, now: Date): Promise<TokenView & { token: string }> {
    const token = randomSecret(tokenPrefix);
    const [row] = await this.database.db
      .insert(apiTokens)
      .values({ name, tokenHash: await sha256Hex(token), role: actor.role, userId: actor.userId, createdAt: now })
      .returning();
    return { ...view(row!), token };
  }

  /** Admins see every token; operators their own. Newest first, cursor = last id seen. */
  async list(actor: Actor, limit: number, cursor: number | null) {
    const conditions = [];
    if (actor.role !== "admin") conditions.push(eq(apiTokens.userId, actor.userId ?? -1));
    if (cursor !== null) conditions.push(lt(apiTokens.id, cursor));
    const rows = await this.database.db
      .select()
      .from(apiTokens)
      .where(and(...conditions))
      .orderBy(desc(apiTokens.id))
      .limit(limit + 1);
    const items = rows.slice(0, limit).map(view);
    return { items, next_cursor: rows.length > limit ? items.at(-1)!.id : null };
  }

  /** Revokes a token; operators may revoke only their own. */
  async revoke(actor: Actor, id: number, now: Date): Promise<void> {
    const conditions = [eq(apiTokens.id, id), isNull(apiTokens.revokedAt)];
    if (actor.role !== "admin") conditions.push(eq(apiTokens.userId, actor.userId ?? -1));
    const rows = await this.database.db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(...conditions))
      .returning({ id: apiTokens.id });
    if (rows.length === 0) throw notFound("token", id);
  }

  /** The actor behind a bearer secret, or null if it is unknown, revoked or its user disabled. */
  async authenticate(secret: string): Promise<Actor | null> {
    if (!secret.startsWith(tokenPrefix)) return null;
    const [row] = await this.database.db
      .select({ id: apiTokens.id, role: apiTokens.role, userId: apiTokens.userId, disabled: users.disabled })
      .from(apiTokens)
      .leftJoin(users, eq(users.id, apiTokens.userId))
      .where(and(eq(apiTokens.tokenHash, await sha256Hex(secret)), isNull(apiTokens.revokedAt)))
      .limit(1);
    if (!row || row.disabled) return null;
    return { kind: "token", role: row.role as Role, userId: row.userId, tokenId: row.id };
  }
}
