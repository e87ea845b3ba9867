/**
 * Browser sessions (SPEC §9). The cookie holds a random token; the table holds its SHA-256. Every
 * sign-in makes a new one. A session lives `idleMs` after its last use (sliding), renewed at most
 * once per `renewAfterMs` so that reading pages does not write on every request. The user's row is
 * read with the session each time: a disabled user is signed out at once.
 */
import { and, eq, gt, lt, sql } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { bookkeeping } from "../db/deadline";
import { prepared } from "../db/prepared";
import { sessions, users } from "../db/schema";
import type { Role } from "./actor";
import { randomSecret, sha256Hex } from "./crypto";

export const sessionCookie = "nst_session";
export const idleMs = 7 * 24 * 3600 * 1000;
export const renewAfterMs = 3600 * 1000;

export type SessionUser = {
  sessionId: string;
  userId: number;
  email: string;
  role: Role;
  expiresAt: Date;
  /** the expiry moved forward on this request: the cookie is re-sent with it */
  renewed: boolean;
};

export class SessionService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  /** Starts a session for a user; returns the token for the cookie (never stored). */
  async create(userId: number): Promise<{ token: string; expiresAt: Date }> {
    const token = randomSecret("s_");
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + idleMs);
    await this.database.db.insert(sessions).values({ id: await sha256Hex(token), userId, expiresAt, createdAt: now });
    // Expired sessions go at each sign-in (an index range on expires_at), so the table does not grow.
    await this.database.db.delete(sessions).where(lt(sessions.expiresAt, now));
    return { token, expiresAt };
  }

  /** The signed-in user behind a cookie token, or null; slides the expiry forward when due. */
  async resolve(token: string | undefined): Promise<SessionUser | null> {
    if (!token || token.length > 100) return null;
    const id = await sha256Hex(token);
    const now = this.clock.now();
    const db = this.database.db;
    const lookup = prepared(db, "sessions_resolve", () =>
      db
        .select({ userId: sessions.userId, expiresAt: sessions.expiresAt, email: users.email, role: users.role, disabled: users.disabled })
        .from(sessions)
        .innerJoin(users, eq(users.id, sessions.userId))
        .where(eq(sessions.id, sql.placeholder("id")))
        .limit(1)
        .prepare("sessions_resolve"),
    );
    const [row] = await lookup.execute({ id });
    if (!row || row.disabled || row.expiresAt.getTime() <= now.getTime()) return null;
    let expiresAt = row.expiresAt;
    let renewed = false;
    if (expiresAt.getTime() - now.getTime() < idleMs - renewAfterMs) {
      expiresAt = new Date(now.getTime() + idleMs);
      renewed = true;
      // Bookkeeping: it does not decide the request (db/deadline.ts), whose own write is still bound.
      await bookkeeping(async () => {
        await db.update(sessions).set({ expiresAt }).where(and(eq(sessions.id, id), gt(sessions.expiresAt, now)));
      });
    }
    return { sessionId: id, userId: row.userId, email: row.email, role: row.role as Role, expiresAt, renewed };
  }

  async destroy(token: string | undefined): Promise<void> {
    if (!token) return;
    await this.database.db.delete(sessions).where(eq(sessions.id, await sha256Hex(token)));
  }

  async destroyAllOf(userId: number): Promise<void> {
    await this.database.db.delete(sessions).where(eq(sessions.userId, userId));
  }
}
