/**
 * The opt-out blocklist (issue 15 item 5): phones no mailing ever sends to. Blocking cancels the
 * phone's waiting messages at once (`last_error` says why), planning plans its new messages as
 * `cancelled` (an `expired` one keeps its status: it missed its window before the block, and the
 * statistics say so), and the dispatcher's check just before a send finds a claimed one blocked and never
 * sends it (claim.ts). Unblocking re-plans the phone's clients into the open mailings.
 *
 * A block takes ROW EXCLUSIVE on clients, which waits for a planning in flight (it holds SHARE, see
 * plan.ts holdClientWrites): its messages are committed before this cancels them, and any planning
 * after it sees the phone blocked.
 *
 * Every change is logged (`blocklist`, action, the phone's last 4 digits, the actor) and recorded
 * in the audit log (`blocklist.added` / `blocklist.removed`; the user when a person or their token
 * acted, with the actor's name in the detail).
 */
import { asc, eq, gt, sql } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { blocklist, clients } from "../db/schema";
import { optedOutReason, planClients } from "../dispatch/plan";
import { loadOpenMailings } from "../mailings/repo";
import type { Logger } from "../ops/logger";
import type { AuditLog } from "../audit/log";
import type { Signals } from "../dispatch/signals";
import { invalid, notFound } from "../problems";
import { normalizePhone } from "../clients/phone";

export type BlockedPhone = { phone_number: string; reason: string; created_at: string };

const masked = (phone: string) => `…${phone.slice(-4)}`;

export class BlocklistService {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly audit?: AuditLog,
    /**
     * A block tells the dispatchers (this process at once, the others by NOTIFY) that claimed
     * sends must read their rows again: a claim's fresh pre-send read predates the block, and
     * without the signal its message could still go out.
     */
    private readonly signals?: Pick<Signals, "clientChanged">,
  ) {}

  /** The audit record of a change; `actor` as actorName() gives it (`user:5`, `token:3`, `admin-key`, `twilio`). */
  private record(kind: "blocklist.added" | "blocklist.removed", phone: string, actor: string, reason?: string) {
    const user = /^user:(\d+)$/.exec(actor);
    return this.audit?.record({
      kind,
      actorUserId: user ? Number(user[1]) : null,
      target: `phone:${masked(phone)}`,
      detail: { actor, ...(reason === undefined ? {} : { reason }) },
    });
  }

  /** Adds a phone; true if it was not blocked yet. */
  async block(rawPhone: unknown, reason: string, actor: string): Promise<{ created: boolean; entry: BlockedPhone }> {
    const phone = normalizePhone(rawPhone);
    if (!phone.ok) throw invalid("phone_number", phone.message);
    if (reason.length > 200) throw invalid("reason", "must be at most 200 characters");
    const now = this.clock.now();
    const created = await this.database.writes.transaction(async (tx) => {
      await tx.execute(sql`lock table clients in row exclusive mode`);
      const inserted = await tx
        .insert(blocklist)
        .values({ phoneNumber: phone.phone, reason, createdAt: now })
        .onConflictDoNothing()
        .returning({ phone: blocklist.phoneNumber });
      await tx.execute(sql`
        update messages set status = 'cancelled', last_error = ${optedOutReason}, updated_at = ${now.toISOString()}::timestamptz
        where phone_number = ${phone.phone} and status in ('scheduled', 'retrying')`);
      return inserted.length > 0;
    });
    if (created) {
      this.signals?.clientChanged();
      this.logger.info("blocklist", { action: "block", phone: masked(phone.phone), actor, reason });
      await this.record("blocklist.added", phone.phone, actor, reason);
    }
    const [row] = await this.database.db.select().from(blocklist).where(eq(blocklist.phoneNumber, phone.phone));
    return { created, entry: view(row!) };
  }

  async unblock(rawPhone: string, actor: string): Promise<void> {
    const phone = normalizePhone(rawPhone);
    if (!phone.ok) throw invalid("phone_number", phone.message);
    const now = this.clock.now();
    await this.database.writes.transaction(async (tx) => {
      const deleted = await tx.delete(blocklist).where(eq(blocklist.phoneNumber, phone.phone)).returning({ phone: blocklist.phoneNumber });
      if (deleted.length === 0) throw notFound("blocked phone", phone.phone);
      const owners = await tx.select({ id: clients.id, timezone: clients.timezone }).from(clients).where(eq(clients.phoneNumber, phone.phone));
      if (owners.length > 0) await planClients(tx, owners, await loadOpenMailings(tx, now), now);
    });
    this.logger.info("blocklist", { action: "unblock", phone: masked(phone.phone), actor });
    await this.record("blocklist.removed", phone.phone, actor);
  }

  /** A page in phone order; `after`: the last phone of the previous page. */
  async list(limit: number, after: string | null): Promise<{ items: BlockedPhone[]; next_cursor: string | null }> {
    const rows = await this.database.db
      .select()
      .from(blocklist)
      .where(after ? gt(blocklist.phoneNumber, after) : undefined)
      .orderBy(asc(blocklist.phoneNumber))
      .limit(limit + 1);
    const items = rows.slice(0, limit).map(view);
    return { items, next_cursor: rows.length > limit ? items.at(-1)!.phone_number : null };
  }
}

function view(row: typeof blocklist.$inferSelect): BlockedPhone {
  return { phone_number: row.phoneNumber, reason: row.reason, created_at: row.createdAt.toISOString() };
}
