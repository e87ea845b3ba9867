/**
 * Accounts (SPEC §9): e-mail + password; the first account becomes admin. Expected outcomes
 * (taken e-mail, bad input, wrong password) are returned as values, not thrown.
 */
import { count, eq, sql } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { users } from "../db/schema";
import type { FieldError } from "../problems";
import type { Role } from "./actor";
import { hashPassword, maxPasswordLength, minPasswordLength, verifyNothing, verifyPassword } from "./passwords";

export type User = { id: number; email: string; role: Role; disabled: boolean };

export type RegisterResult = { ok: true; user: User } | { ok: false; errors: FieldError[] };

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function toUser(row: typeof users.$inferSelect): User {
  return { id: row.id, email: row.email, role: row.role as Role, disabled: row.disabled };
}

export function normalizeEmail(raw: string): string {
  return raw.trim().toLowerCase();
}

export class UserService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  async count(): Promise<number> {
    const [row] = await this.database.db.select({ n: count() }).from(users);
    return Number(row?.n ?? 0);
  }

  /** Field errors of a registration form (message keys of the UI catalogue). */
  validate(email: string, password: string): FieldError[] {
    const errors: FieldError[] = [];
    if (!emailPattern.test(email) || email.length > 254) errors.push({ field: "email", message: "email.invalid" });
    if (password.length < minPasswordLength) errors.push({ field: "password", message: "password.short" });
    else if (password.length > maxPasswordLength) errors.push({ field: "password", message: "password.long" });
    return errors;
  }

  /** Creates an account; the first one ever is an admin (decided under a lock, so two cannot both be first). */
  async register(rawEmail: string, password: string): Promise<RegisterResult> {
    const email = normalizeEmail(rawEmail);
    const errors = this.validate(email, password);
    if (errors.length > 0) {
      // Say everything wrong at once: a taken e-mail too, not only after the password is fixed.
      if (!errors.some((e) => e.field === "email") && (await this.exists(email))) errors.unshift({ field: "email", message: "email.taken" });
      return { ok: false, errors };
    }
    const passwordHash = await hashPassword(password);
    const now = this.clock.now();
    return this.database.db.transaction(async (tx) => {
      await tx.execute(sql`lock table users in share row exclusive mode`);
      const [existing] = await tx.select({ id: users.id }).from(users).where(sql`lower(${users.email}) = ${email}`);
      if (existing) return { ok: false as const, errors: [{ field: "email", message: "email.taken" }] };
      const [{ n }] = (await tx.select({ n: count() }).from(users)) as [{ n: number }];
      const role: Role = Number(n) === 0 ? "admin" : "operator";
      const [row] = await tx.insert(users).values({ email, passwordHash, role, createdAt: now, updatedAt: now }).returning();
      return { ok: true as const, user: toUser(row!) };
    });
  }

  /** The user with these credentials, or null (unknown e-mail, wrong password or disabled). */
  async verify(rawEmail: string, password: string): Promise<User | null> {
    const email = normalizeEmail(rawEmail);
    const [row] = await this.database.db.select().from(users).where(sql`lower(${users.email}) = ${email}`);
    if (!row) {
      await verifyNothing(password);
      return null;
    }
    if (!(await verifyPassword(password, row.passwordHash))) return null;
    return row.disabled ? null : toUser(row);
  }

  private async exists(email: string): Promise<boolean> {
    const [row] = await this.database.db.select({ id: users.id }).from(users).where(sql`lower(${users.email}) = ${email}`);
    return row !== undefined;
  }

  async get(id: number): Promise<User | null> {
    const [row] = await this.database.db.select().from(users).where(eq(users.id, id));
    return row ? toUser(row) : null;
  }

  /** Disables or re-enables an account; a disabled user's sessions and tokens stop working at once. */
  async setDisabled(id: number, disabled: boolean): Promise<boolean> {
    const rows = await this.database.db
      .update(users)
      .set({ disabled, updatedAt: this.clock.now() })
      .where(eq(users.id, id))
      .returning({ id: users.id });
    return rows.length > 0;
  }
}

/** A row of the admin area's user list. */
export type UserRow = User & { created_at: string; has_password: boolean };

/** Outcome of an admin's change to an account. */
export type UserChange = { ok: true; user: User } | { ok: false; reason: "not-found" | "last-admin" };

/**
 * Role changes and disabling (SPEC §9), kept apart from sign-in. The last active admin can be
 * neither demoted nor disabled: the check and the write are one transaction that first locks every
 * active admin's row, so two admins demoting each other at once cannot both succeed (the second
 * waits, then re-reads the rows and sees itself as the last).
 */
export class UserAdmin {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  async list(): Promise<UserRow[]> {
    const rows = await this.database.db.select().from(users).orderBy(users.id);
    return rows.map((row) => ({ ...toUser(row), created_at: row.createdAt.toISOString(), has_password: row.passwordHash !== null }));
  }

  setRole(id: number, role: Role): Promise<UserChange> {
    return this.change(id, role === "operator", { role });
  }

  setDisabled(id: number, disabled: boolean): Promise<UserChange> {
    return this.change(id, disabled, { disabled });
  }

  /** `removesAdmin`: the change takes away admin rights if the user is an active admin now. */
  private change(id: number, removesAdmin: boolean, set: { role?: Role; disabled?: boolean }): Promise<UserChange> {
    return this.database.db.transaction(async (tx) => {
      const admins = await tx
        .select({ id: users.id })
        .from(users)
        .where(sql`${users.role} = 'admin' and not ${users.disabled}`)
        .for("update");
      if (removesAdmin && admins.length === 1 && admins[0]!.id === id) return { ok: false as const, reason: "last-admin" as const };
      const [row] = await tx.update(users).set({ ...set, updatedAt: this.clock.now() }).where(eq(users.id, id)).returning();
      if (!row) return { ok: false as const, reason: "not-found" as const };
      return { ok: true as const, user: toUser(row) };
    });
  }
}
