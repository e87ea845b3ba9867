/**
 * Personal API tokens (SPEC §8). The secret is returned once, at creation; the database keeps its
 * SHA-256. A token acts with its creator's role; tokens made with ADMIN_API_KEY are admin tokens.
 */
import { and, desc, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import type { Logger } from "../ops/logger";
import { bookkeeping } from "../db/deadline";
import { prepared } from "../db/prepared";
import { apiTokens, users } from "../db/schema";
import { notFound } from "../problems";
import type { Actor, Role } from "./actor";
import { randomSecret, sha256Hex } from "./crypto";
import { pageOf } from "../http/params";

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

/** `last_used_at` is written at most this often per token (a write per request would cost the API). */
export const lastUsedResolutionMs = 60_000;

export class TokenService {
  /** token id → when this process last wrote its last_used_at (injected clock, ms) */
  private readonly usedAt = new Map<number, number>();

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

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
    return pageOf(rows, limit, view);
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

  /**
   * The actor behind a bearer secret, or null if it is unknown, revoked or its user disabled (read
   * on every request, so disabling takes effect at once).
   * Records the use in `last_used_at`, to the minute: at most one write per token and minute.
   */
  async authenticate(secret: string): Promise<Actor | null> {
    if (!secret.startsWith(tokenPrefix)) return null;
    const db = this.database.db;
    const lookup = prepared(db, "api_tokens_authenticate", () =>
      db
        .select({ id: apiTokens.id, role: apiTokens.role, userId: apiTokens.userId, disabled: users.disabled, userRole: users.role })
        .from(apiTokens)
        .leftJoin(users, eq(users.id, apiTokens.userId))
        .where(and(eq(apiTokens.tokenHash, sql.placeholder("hash")), isNull(apiTokens.revokedAt)))
        .limit(1)
        .prepare("api_tokens_authenticate"),
    );
    const [row] = await lookup.execute({ hash: await sha256Hex(secret) });
    if (!row || row.disabled) return null;
    await this.recordUse(row.id);
    // A user's token acts with the user's role now (a demoted admin's tokens are operator tokens).
    return { kind: "token", role: (row.userRole ?? row.role) as Role, userId: row.userId, tokenId: row.id };
  }

  /** Best effort: a failed write is logged and tried again on the token's next use, never a failed request. */
  private async recordUse(id: number): Promise<void> {
    const now = this.clock.now();
    const last = this.usedAt.get(id);
    if (last !== undefined && now.getTime() - last < lastUsedResolutionMs && now.getTime() >= last) return;
    // Set before the write so that concurrent requests of one token write once, not once each.
    this.usedAt.set(id, now.getTime());
    const since = new Date(now.getTime() - lastUsedResolutionMs);
    try {
      // Other processes record uses too: only move it forward, and only by a minute or more.
      // Bookkeeping: it does not decide the request (db/deadline.ts), whose own write is still bound.
      await bookkeeping(async () => {
        await this.database.db
          .update(apiTokens)
          .set({ lastUsedAt: now })
          .where(and(eq(apiTokens.id, id), or(isNull(apiTokens.lastUsedAt), lt(apiTokens.lastUsedAt, since))));
      });
    } catch (error) {
      if (this.usedAt.get(id) === now.getTime()) this.usedAt.delete(id);
      this.logger.warn("recording a token's use failed", { token_id: id, error });
    }
  }
}
