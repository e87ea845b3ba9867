/**
 * The audit log (SPEC §9): who did what, when, from which address. Rows are only ever inserted
 * (the table's trigger refuses UPDATE and DELETE); lists read newest first with the usual cursor.
 */
import { and, desc, eq, lt } from "drizzle-orm";
import type { Logger } from "../ops/logger";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { auditLog } from "../db/schema";
import { pageOf } from "../http/params";
import type { AuditKind } from "./kinds";
import { peerAddress } from "../http/peer";

/** One event to record. `actorUserId` null: nobody signed in (a failed sign-in, ADMIN_API_KEY). */
export type AuditEvent = {
  kind: AuditKind;
  actorUserId: number | null;
  target?: string | null;
  detail?: Record<string, unknown>;
  ip?: string | null;
};

export type AuditEntry = {
  id: number;
  at: string;
  actor_user_id: number | null;
  kind: string;
  target: string | null;
  detail: Record<string, unknown>;
  ip: string | null;
};

export type AuditFilter = { userId?: number; kind?: AuditKind };

function view(row: typeof auditLog.$inferSelect): AuditEntry {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor_user_id: row.actorUserId,
    kind: row.kind,
    target: row.target,
    detail: row.detail,
    ip: row.ip,
  };
}

export class AuditLog {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  /**
   * Records an event after its action has happened (not in the action's transaction). Never throws:
   * the action stands either way, so a failed audit write must not turn its answer into a 500; it
   * is logged as an error instead (kind and target only, never the detail).
   */
  async record(event: AuditEvent): Promise<void> {
    try {
      await this.database.db.insert(auditLog).values({
        at: this.clock.now(),
        actorUserId: event.actorUserId,
        kind: event.kind,
        target: event.target ?? null,
        detail: event.detail ?? {},
        ip: event.ip ?? null,
      });
    } catch (error) {
      this.logger?.error("audit record failed", { kind: event.kind, target: event.target ?? null, error });
    }
  }

  /** Newest first; cursor = the last id seen. */
  async list(filter: AuditFilter, limit: number, cursor: number | null) {
    const conditions = [];
    if (filter.userId !== undefined) conditions.push(eq(auditLog.actorUserId, filter.userId));
    if (filter.kind !== undefined) conditions.push(eq(auditLog.kind, filter.kind));
    if (cursor !== null) conditions.push(lt(auditLog.id, cursor));
    const rows = await this.database.db
      .select()
      .from(auditLog)
      .where(and(...conditions))
      .orderBy(desc(auditLog.id))
      .limit(limit + 1);
    return pageOf(rows, limit, view);
  }
}

/** The address a request came from (the socket's peer, http/peer.ts; no proxy header is trusted). */
export function requestAddress(ctx: { request: Request }): string | null {
  return peerAddress(ctx.request);
}
