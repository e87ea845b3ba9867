/**
 * Who an OAuth identity signs in as (SPEC §9). A linked identity (provider, subject) finds its user
 * again whatever e-mail the provider shows now. An unlinked one needs a verified e-mail in
 * ADMIN_EMAILS: it is linked to the account with that e-mail (made admin) or to a new admin account.
 * An operator account promoted so loses its password, sessions and tokens (registration does not
 * verify e-mails: they may be an impostor's); its owner signs in through the provider from then on.
 * Anything else is refused — outcomes as values.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { apiTokens, identities, sessions, users } from "../db/schema";
import type { Role } from "./actor";
import type { Identity } from "./oauth";
import type { User } from "./users";

export type Refusal = "unverified" | "not-allowed" | "disabled";

export type LinkResult = { ok: true; user: User; created: boolean } | { ok: false; reason: Refusal };

export class IdentityService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly adminEmails: readonly string[],
  ) {}

  async signIn(identity: Identity): Promise<LinkResult> {
    const linked = await this.linkedUser(identity);
    if (linked) {
      if (linked.disabled) return { ok: false, reason: "disabled" };
      // The allow-list still decides, on the account's e-mail (the provider's may have changed since):
      // taking an address off ADMIN_EMAILS ends its single sign-on.
      if (!this.adminEmails.includes(linked.email.toLowerCase())) return { ok: false, reason: "not-allowed" };
      return { ok: true, user: linked, created: false };
    }
    if (!identity.email || !identity.emailVerified) return { ok: false, reason: "unverified" };
    const email = identity.email.toLowerCase();
    if (!this.adminEmails.includes(email)) return { ok: false, reason: "not-allowed" };
    const now = this.clock.now();
    const result = await this.database.db.transaction(async (tx) => {
      // The lock registration takes (users.ts): two first sign-ins with one new e-mail (or one and a
      // registration) would otherwise both find no account and both insert; the second, a 500.
      await tx.execute(sql`lock table users in share row exclusive mode`);
      // The account with this e-mail (any case), locked so that a concurrent registration or link waits.
      const [existing] = await tx.select().from(users).where(sql`lower(${users.email}) = ${email}`).for("update");
      let row = existing;
      if (row?.disabled) return { ok: false as const, reason: "disabled" as const };
      if (row) {
        if (row.role !== "admin") {
          // Registration never verified this e-mail: whoever registered it may not be its owner. The
          // password, sessions and API tokens they made must not become admin's with the promotion.
          [row] = await tx.update(users).set({ role: "admin", passwordHash: null, updatedAt: now }).where(eq(users.id, row.id)).returning();
          await tx.delete(sessions).where(eq(sessions.userId, row!.id));
          await tx.update(apiTokens).set({ revokedAt: now }).where(and(eq(apiTokens.userId, row!.id), isNull(apiTokens.revokedAt)));
        }
      } else {
        [row] = await tx.insert(users).values({ email, passwordHash: null, role: "admin", createdAt: now, updatedAt: now }).returning();
      }
      // A concurrent first sign-in of the same identity may have linked it: then it wins, nothing doubles.
      const inserted = await tx
        .insert(identities)
        .values({ provider: identity.provider, subject: identity.subject, userId: row!.id, email, createdAt: now })
        .onConflictDoNothing()
        .returning({ id: identities.id });
      return { ok: true as const, user: { id: row!.id, email: row!.email, role: row!.role as Role, disabled: row!.disabled }, created: !existing && inserted.length > 0 };
    });
    return result;
  }

  private async linkedUser(identity: Identity): Promise<User | null> {
    const [row] = await this.database.db
      .select({ id: users.id, email: users.email, role: users.role, disabled: users.disabled })
      .from(identities)
      .innerJoin(users, eq(users.id, identities.userId))
      .where(and(eq(identities.provider, identity.provider), eq(identities.subject, identity.subject)));
    return row ? { ...row, role: row.role as Role } : null;
  }
}
