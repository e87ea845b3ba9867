/**
 * The database schema. Migrations in drizzle/ are generated from this file by `bun run db:generate`
 * and are never edited after they land.
 *
 * Ids are 32-bit identities: postgres.js returns 64-bit integers as strings, and 2^31 messages is
 * far past what one PostgreSQL primary holds in this design. Instants are timestamptz; a mailing's
 * wall-clock start and end are text (`YYYY-MM-DDTHH:MM:SS`) because they are not instants at all
 * (SPEC §4), and postgres.js would turn a `timestamp without time zone` into a Date in the process's
 * own zone.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { claimableStates, type MessageState, messageStates, waitingStates } from "../dispatch/states";

/**
 * `'scheduled', 'sending', …` for a CHECK constraint or an index predicate built from the lifecycle
 * in dispatch/states.ts. DDL takes no parameters, so the names are written into the text; they are
 * this file's own constants, and anything but a lowercase word is refused.
 */
function stateList(states: readonly MessageState[]) {
  for (const state of states) if (!/^[a-z]+$/.test(state)) throw new Error(`not a state name: ${state}`);
  return sql.raw(states.map((state) => `'${state}'`).join(", "));
}

const instant = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const created = () => instant("created_at").notNull().defaultNow();
const updated = () => instant("updated_at").notNull().defaultNow();

export const users = pgTable(
  "users",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    email: text("email").notNull(),
    passwordHash: text("password_hash"),
    role: text("role").notNull().default("operator"),
    disabled: boolean("disabled").notNull().default(false),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [
    uniqueIndex("users_email_key").on(sql`lower(${t.email})`),
    check("users_role_check", sql`${t.role} in ('admin', 'operator')`),
  ],
);

export const apiTokens = pgTable(
  "api_tokens",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    /** null for tokens created with ADMIN_API_KEY */
    userId: integer("user_id").references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** SHA-256 of the secret, hex; the secret itself is never stored */
    tokenHash: text("token_hash").notNull(),
    role: text("role").notNull(),
    createdAt: created(),
    lastUsedAt: instant("last_used_at"),
    revokedAt: instant("revoked_at"),
  },
  (t) => [
    uniqueIndex("api_tokens_hash_key").on(t.tokenHash),
    check("api_tokens_role_check", sql`${t.role} in ('admin', 'operator')`),
  ],
);

export const clients = pgTable(
  "clients",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    phoneNumber: text("phone_number").notNull(),
    operatorCode: text("operator_code").notNull(),
    tag: text("tag").notNull().default(""),
    timezone: text("timezone").notNull().default("UTC"),
    /** free-form string values for personalised text (`{{name}}`), at most 20 (clients/attributes.ts) */
    attributes: jsonb("attributes").$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [
    uniqueIndex("clients_phone_key").on(t.phoneNumber),
    index("clients_tag_idx").on(t.tag),
    index("clients_operator_code_idx").on(t.operatorCode),
    index("clients_timezone_idx").on(t.timezone),
  ],
);

export const mailings = pgTable(
  "mailings",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    text: text("text").notNull(),
    /** wall-clock start, `YYYY-MM-DDTHH:MM:SS`, no zone */
    startTime: text("start_time").notNull(),
    endTime: text("end_time").notNull(),
    /** the earliest instant the start is reached anywhere (wall time at UTC+14) */
    startsAt: instant("starts_at").notNull(),
    /** the last instant the window is open anywhere (wall end at UTC−12) */
    endsAt: instant("ends_at").notNull(),
    tagsFilter: text("tags_filter").array().notNull().default(sql`'{}'::text[]`),
    codesFilter: text("codes_filter").array().notNull().default(sql`'{}'::text[]`),
    windowFrom: text("window_from"),
    windowTo: text("window_to"),
    paused: boolean("paused").notNull().default(false),
    cancelledAt: instant("cancelled_at"),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [index("mailings_ends_at_idx").on(t.endsAt)],
);

export const messages = pgTable(
  "messages",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    /**
     * Not a foreign key on purpose: the row-by-row RI check cost 4.2 s of a 12 s plan of 1,000,000
     * messages (EXPLAIN ANALYZE here). Deleting a mailing deletes its messages explicitly, in the
     * same transaction (mailings/service.ts), and the dispatcher cancels any row whose mailing is gone.
     */
    mailingId: integer("mailing_id").notNull(),
    /** not a foreign key: sent messages outlive their client (SPEC §3) */
    clientId: integer("client_id").notNull(),
    /** snapshot of the client's phone, kept for statistics after the client is deleted */
    phoneNumber: text("phone_number").notNull(),
    status: text("status").$type<MessageState>().notNull().default("scheduled"),
    attempts: integer("attempts").notNull().default(0),
    dueAt: instant("due_at").notNull(),
    expiresAt: instant("expires_at").notNull(),
    /** when to try next; for a `sending` row, when its lease runs out */
    nextAttemptAt: instant("next_attempt_at").notNull(),
    sentAt: instant("sent_at"),
    lastError: text("last_error"),
    /** `{provider}:{the provider's id}` of an accepted send; delivery receipts find the message by it */
    providerMessageId: text("provider_message_id"),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [
    // Client first: it also serves every per-client lookup (re-planning, cancelling on delete).
    uniqueIndex("messages_client_mailing_key").on(t.clientId, t.mailingId),
    index("messages_due_idx")
      .on(t.nextAttemptAt)
      .where(sql`status in (${stateList(claimableStates)})`),
    index("messages_expiry_idx")
      .on(t.expiresAt)
      .where(sql`status in (${stateList(waitingStates)})`),
    index("messages_mailing_status_idx").on(t.mailingId, t.status, t.id),
    index("messages_provider_message_idx").on(t.providerMessageId).where(sql`provider_message_id is not null`),
    check("messages_status_check", sql`${t.status} in (${stateList(messageStates)})`),
  ],
);

/**
 * Message counts per mailing and status, kept exact by statement-level triggers on messages, so
 * statistics read a few hundred rows instead of scanning millions of messages. Since 0007 these are
 * the folded base: the triggers append to `mailing_count_deltas`, and `mailing_counts_fold()` adds
 * those into this table (one row per mailing and status, shard 0) and empties them. Readers use the
 * view `mailing_counts_live` (base + unfolded deltas), exact at every moment. Shards 1–3 are rows
 * from before 0007 (the triggers upserted here directly, sharded by backend); readers sum them.
 */
export const mailingCounts = pgTable(
  "mailing_counts",
  {
    mailingId: integer("mailing_id").notNull(),
    status: text("status").notNull(),
    shard: smallint("shard").notNull(),
    n: bigint("n", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.mailingId, t.status, t.shard] })],
);

/**
 * Counter changes not yet folded into `mailing_counts` (drizzle/0007): the statement triggers on
 * messages insert here, one row per (mailing, status) a statement changed, and never update. With
 * autovacuum off (or slow), updating the counter rows on every claim and group commit left a dead row
 * version per update that nothing removed: 200,000 sends over 20 mailings grew `mailing_counts` from
 * 32 KB to 1.7 MB (bench/suites/counter-bloat.ts). Appends leave no dead rows, the fold updates each
 * base row once per fold, and TRUNCATE gives the space back at once. No index: the fold keeps this
 * table small, and readers scan it.
 */
export const mailingCountDeltas = pgTable("mailing_count_deltas", {
  mailingId: integer("mailing_id").notNull(),
  status: text("status").notNull(),
  n: bigint("n", { mode: "number" }).notNull(),
});

/**
 * Messages that became `sent`, per mailing and minute of `sent_at` (the charts of SPEC §9), kept by a
 * statement-level trigger on messages like mailing_counts (drizzle/0004): `sent_at` has no index,
 * and a chart must not scan messages. Sharded by backend like mailing_counts, so workers completing
 * sends of one mailing in the same minute do not queue on one row.
 */
export const sendMinutes = pgTable(
  "send_minutes",
  {
    mailingId: integer("mailing_id").notNull(),
    minute: instant("minute").notNull(),
    shard: smallint("shard").notNull(),
    n: bigint("n", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.mailingId, t.minute, t.shard] }), index("send_minutes_minute_idx").on(t.minute)],
);

/**
 * Browser sessions (SPEC §9). The id is the SHA-256 (hex) of the random token in the cookie, so a
 * copy of this table signs nobody in. `expires_at` slides forward while the session is used.
 */
export const sessions = pgTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    expiresAt: instant("expires_at").notNull(),
    createdAt: created(),
  },
  (t) => [index("sessions_user_idx").on(t.userId), index("sessions_expires_idx").on(t.expiresAt)],
);

/**
 * Delivery receipts (webhooks/) not yet applied to their message: one that arrived before the send's
 * result was written waits here, and the dispatcher's tick applies it once the message is `sent`
 * (dispatch/receipts.ts). Receipts naming no message of ours are forgotten after 3 days.
 */
export const deliveryReceipts = pgTable(
  "delivery_receipts",
  {
    /** `{provider}:{the provider's id}`, as in messages.provider_message_id */
    providerMessageId: text("provider_message_id").primaryKey(),
    status: text("status").$type<"delivered" | "undelivered">().notNull(),
    reason: text("reason"),
    receivedAt: instant("received_at").notNull().defaultNow(),
  },
  (t) => [check("delivery_receipts_status_check", sql`${t.status} in ('delivered', 'undelivered')`)],
);

/**
 * The shared send-rate token bucket (PROVIDER_RATE, PROVIDER_BURST; dispatch/rate.ts): one row,
 * taken from by every worker's claim, so the cap holds across processes. `paused_until` is set by
 * a gateway's 429 Retry-After: no process sends before it.
 */
export const sendRate = pgTable(
  "send_rate",
  {
    id: smallint("id").primaryKey(),
    tokens: doublePrecision("tokens").notNull(),
    refilledAt: instant("refilled_at").notNull(),
    pausedUntil: instant("paused_until").notNull(),
  },
  (t) => [check("send_rate_single_row", sql`${t.id} = 1`)],
);

/**
 * Answers kept for `Idempotency-Key` (http/idempotency.ts): per caller and route, the key, a hash of
 * the request, and the first successful answer, for 24 hours. A row without a status is a request
 * still running; `holder` names that run's hold (drizzle/0008_idempotency_holder.sql).
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    /** SHA-256 of the caller's credentials and the route: one caller's keys never answer another */
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    status: smallint("status"),
    contentType: text("content_type"),
    body: text("body"),
    createdAt: created(),
    /**
     * A token of the run holding the key, new at each claim and each takeover: a run releases,
     * renews and answers its key only while the token is its own, so a run whose key a retry took
     * over (its heartbeat stalled past the lease) leaves the retry's hold alone. NULL in rows
     * written before 0008, or claimed by a process of an older version during a rollout: such a hold
     * is taken over after its lease as before, and no run of this version matches it as its own. (An
     * older version's takeover leaves the token it found, and its release and answer ignore tokens:
     * while versions are mixed, a stalled run can still meet such a hold as its own.)
     */
    holder: uuid("holder"),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt)],
);

/** Phones that opted out (blocklist/): no mailing sends to them; their messages are cancelled. */
export const blocklist = pgTable("blocklist", {
  phoneNumber: text("phone_number").primaryKey(),
  reason: text("reason").notNull().default(""),
  createdAt: created(),
});

/** One row per day whose daily report a replica took on (ops/report.ts; drizzle/0003_daily_reports.sql). */
export const dailyReports = pgTable("daily_reports", {
  day: date("day", { mode: "string" }).primaryKey(),
  claimedAt: instant("claimed_at").notNull().defaultNow(),
});

/**
 * OAuth identities linked to accounts (SPEC §9): one per (provider, subject). The subject is the
 * provider's stable id, so a later sign-in finds the same user even after the e-mail changed there.
 */
export const identities = pgTable(
  "identities",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    provider: text("provider").notNull(),
    subject: text("subject").notNull(),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** the verified e-mail the provider gave when the identity was linked */
    email: text("email").notNull(),
    createdAt: created(),
  },
  (t) => [uniqueIndex("identities_provider_subject_key").on(t.provider, t.subject), index("identities_user_idx").on(t.userId)],
);

/**
 * Admin and security events (SPEC §9), append-only: a trigger (drizzle/0005) refuses UPDATE and
 * DELETE. `actor_user_id` is not a foreign key: the record outlives whatever it names.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    at: instant("at").notNull(),
    actorUserId: integer("actor_user_id"),
    kind: text("kind").notNull(),
    target: text("target"),
    detail: jsonb("detail").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    ip: text("ip"),
  },
  (t) => [index("audit_log_actor_idx").on(t.actorUserId, t.id), index("audit_log_kind_idx").on(t.kind, t.id)],
);
