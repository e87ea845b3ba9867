/** Request and response schemas of the mailing API. */
import { t } from "elysia";

const wallTime = (example: string) =>
  t.String({
    maxLength: 64,
    title: "a date-time",
    description:
      "Wall-clock date-time, reached in each client's own time zone. A trailing Z or offset is accepted and ignored.",
    examples: [example],
  });
const sendWindow = t.Object(
  {
    from: t.String({ maxLength: 5, title: "a time HH:MM", description: "HH:MM, client-local", examples: ["09:00"] }),
    to: t.String({ maxLength: 5, title: "a time HH:MM", description: "HH:MM, client-local; may be before `from` (wraps midnight)", examples: ["21:00"] }),
  },
  { description: "Daily window in the client's local time; messages wait for the next opening" },
);
/** `null` or the window; the title and example are what a 422 says is accepted. */
const optionalWindow = t.Union([sendWindow, t.Null()], { title: "null or an object", examples: [{ from: "09:00", to: "21:00" }] });
// Tags of at most 64 characters, counted as code points by the service (TypeBox counts UTF-16 units).
const tagsFilter = t.Array(t.String(), {
  maxItems: 1000,
  title: "a list of tags",
  examples: [["vip", "new"]],
  description: "Match clients with any of these tags (each at most 64 characters); empty = all",
});
const codesFilter = t.Array(t.Union([t.String({ maxLength: 8 }), t.Number()], { title: "a 3-digit operator code", examples: [910, "910"] }), {
  maxItems: 1000,
  title: "a list of 3-digit operator codes",
  examples: [[910, 911]],
  description: "Match clients with any of these 3-digit operator codes; empty = all",
});

export const mailingCreate = t.Object(
  {
    text: t.String({ maxLength: 1000, description: "1–1000 characters" }),
    start_time: wallTime("2026-12-01T09:00:00"),
    end_time: wallTime("2026-12-01T21:00:00"),
    tags_filter: t.Optional(tagsFilter),
    codes_filter: t.Optional(codesFilter),
    send_window: t.Optional(optionalWindow),
  },
  {
    examples: [
      {
        text: "Winter sale starts today",
        start_time: "2026-12-01T09:00:00",
        end_time: "2026-12-01T21:00:00",
        tags_filter: ["vip"],
        codes_filter: [910, 911],
        send_window: { from: "09:00", to: "21:00" },
      },
    ],
  },
);

export const mailingPatch = t.Object(
  {
    text: t.Optional(t.String({ maxLength: 1000 })),
    start_time: t.Optional(wallTime("2026-12-01T10:00:00")),
    end_time: t.Optional(wallTime("2026-12-02T21:00:00")),
    tags_filter: t.Optional(tagsFilter),
    codes_filter: t.Optional(codesFilter),
    send_window: t.Optional(optionalWindow),
  },
  { examples: [{ end_time: "2026-12-02T21:00:00", tags_filter: [] }] },
);

export const mailingStatus = t.UnionEnum(["scheduled", "running", "finished", "paused", "cancelled"]);

export const mailing = t.Object({
  id: t.Integer(),
  text: t.String(),
  start_time: t.String({ examples: ["2026-12-01T09:00:00"] }),
  end_time: t.String({ examples: ["2026-12-01T21:00:00"] }),
  tags_filter: t.Array(t.String()),
  codes_filter: t.Array(t.String()),
  send_window: t.Union([t.Object({ from: t.String(), to: t.String() }), t.Null()]),
  status: mailingStatus,
  pending: t.Integer({ description: "Messages still to send (scheduled, sending or retrying); a running mailing may have 0 while its window is open somewhere" }),
  closes_at: t.String({
    format: "date-time",
    description: "When end_time passes in the last time zone (UTC−12): the mailing is finished from then on, and clients added later are no longer planned",
    examples: ["2026-12-02T09:00:00.000Z"],
  }),
  sms: t.Optional(
    t.Object(
      {
        encoding: t.UnionEnum(["GSM-7", "UCS-2"]),
        characters: t.Integer(),
        segments: t.Integer(),
      },
      { description: "The SMS length of the text's longest rendering for the matching clients: GSM-7 160 characters (153 per part), UCS-2 (any Cyrillic) 70 (67 per part). In single-mailing answers only" },
    ),
  ),
  created_at: t.String({ format: "date-time" }),
  updated_at: t.String({ format: "date-time" }),
});

export const mailingList = t.Object({
  items: t.Array(mailing),
  next_cursor: t.Union([t.Integer(), t.Null()]),
});

export const mailingQuery = t.Object({
  status: t.Optional(t.String({ description: "scheduled, running, finished, paused or cancelled" })),
  limit: t.Optional(t.String({ description: "Page size, 1–1000 (default 50)" })),
  cursor: t.Optional(t.String({ description: "next_cursor of the previous page" })),
});

export type MailingCreate = typeof mailingCreate.static;
export type MailingPatch = typeof mailingPatch.static;
export type MailingView = typeof mailing.static;
export type MailingStatus = typeof mailingStatus.static;
export const mailingStatuses: MailingStatus[] = ["scheduled", "running", "finished", "paused", "cancelled"];
