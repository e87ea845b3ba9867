/** Statistics shapes (SPEC §5): every counted status is a key, zeros included. */
import { t } from "elysia";
import { messageStates } from "../dispatch/states";
import { mailing } from "../mailings/model";

export const byStatus = t.Object({
  scheduled: t.Integer(),
  sending: t.Integer(),
  sent: t.Integer(),
  retrying: t.Integer(),
  failed: t.Integer(),
  expired: t.Integer(),
  /** of the sent ones, those the provider reports delivered / not delivered (issue 15) */
  delivered: t.Integer(),
  undelivered: t.Integer(),
});

export const overallStats = t.Object({
  mailings: t.Integer(),
  messages: byStatus,
  by_mailing: t.Array(
    t.Object({
      mailing_id: t.Integer(),
      text: t.String(),
      status: t.String(),
      start_time: t.String(),
      end_time: t.String(),
      total: t.Integer(),
      by_status: byStatus,
    }),
  ),
});

export const messageStatus = t.UnionEnum([...messageStates]);

export const statsMessage = t.Object({
  id: t.Integer(),
  client_id: t.Integer(),
  phone_number: t.String(),
  status: messageStatus,
  attempts: t.Integer(),
  sent_at: t.Union([t.String({ format: "date-time" }), t.Null()]),
  last_error: t.Union([t.String(), t.Null()]),
  provider_message_id: t.Union([t.String(), t.Null()], {
    description: "The provider's id of the accepted send, as `<gateway>:<id>` (e.g. `twilio:SM…`); its delivery receipts are matched by it. Null until a provider that returns ids accepts the message",
  }),
});

export const mailingStats = t.Object({
  mailing,
  total: t.Integer(),
  by_status: byStatus,
  messages: t.Array(statsMessage),
  next_cursor: t.Union([t.Integer(), t.Null()]),
});

export const message = t.Object({
  id: t.Integer(),
  mailing_id: t.Integer(),
  client_id: t.Integer(),
  phone_number: t.String(),
  status: messageStatus,
  attempts: t.Integer(),
  due_at: t.String({ format: "date-time" }),
  next_attempt_at: t.Union([t.String({ format: "date-time" }), t.Null()]),
  sent_at: t.Union([t.String({ format: "date-time" }), t.Null()]),
  last_error: t.Union([t.String(), t.Null()]),
  provider_message_id: t.Union([t.String(), t.Null()], {
    description: "The provider's id of the accepted send, as `<gateway>:<id>` (e.g. `twilio:SM…`); its delivery receipts are matched by it. Null until a provider that returns ids accepts the message",
  }),
  created_at: t.String({ format: "date-time" }),
});

export const messageQuery = t.Object({
  status: t.Optional(t.String({ description: "Only messages in this status" })),
  limit: t.Optional(t.String({ description: "Page size, 1–1000 (default 50)" })),
  cursor: t.Optional(t.String({ description: "next_cursor of the previous page" })),
});
