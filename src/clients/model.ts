/** Request and response schemas of the client API; the OpenAPI document is generated from them. */
import { t } from "elysia";

const phone = t.Union([t.String({ maxLength: 32 }), t.Number()], {
  title: "a phone number",
  description: "Any of 79101459028, \"+7 (910) 145-90-28\", \"89101459028\", 9101459028; stored as 7XXXXXXXXXX",
  examples: ["+7 (910) 145-90-28", 79101459028],
});
const operatorCode = t.Union([t.String({ maxLength: 8 }), t.Number()], {
  title: "a 3-digit operator code",
  examples: [910, "910"],
  description: "Derived from the phone (digits 2–4); if given it must match",
});
/**
 * A tag is at most 64 characters (code points: 64 emoji fit). TypeBox's maxLength counts UTF-16
 * units, which would refuse a 33-emoji tag, so the length is checked by `tagTooLong` instead; the
 * request body as a whole stays capped at 1 MiB.
 */
export const tagMaxLength = 64;
export const tagLengthMessage = `must be at most ${tagMaxLength} characters`;

/** True when `tag` has more than 64 characters, counted as code points. */
export function tagTooLong(tag: string): boolean {
  // .length counts UTF-16 units, never fewer than the characters: the common case needs no count.
  if (tag.length <= tagMaxLength) return false;
  let count = 0;
  for (const _ of tag) if (++count > tagMaxLength) return true;
  return false;
}

const tag = t.String({ description: `Free-form tag of at most ${tagMaxLength} characters, may be empty` });
const attributes = t.Record(t.String(), t.String(), {
  description: "Values for personalised text: {{name}} in a mailing's text is this client's attributes.name. At most 20 keys (letters, digits, _), values ≤ 256 characters",
  examples: [{ name: "Anna", city: "Kazan" }],
});
const timezone = t.String({ maxLength: 64, title: "an IANA time zone name", description: "IANA time zone name", examples: ["Europe/Moscow"] });

export const clientCreate = t.Object(
  {
    phone_number: phone,
    operator_code: t.Optional(operatorCode),
    tag: t.Optional(tag),
    timezone: t.Optional(timezone),
    attributes: t.Optional(attributes),
  },
  { examples: [{ phone_number: 9101459028, tag: "vip", timezone: "Europe/Moscow", attributes: { name: "Anna" } }] },
);

export const clientPatch = t.Object(
  {
    phone_number: t.Optional(phone),
    operator_code: t.Optional(operatorCode),
    tag: t.Optional(tag),
    timezone: t.Optional(timezone),
    attributes: t.Optional(attributes),
  },
  { examples: [{ tag: "gold", timezone: "Asia/Vladivostok" }] },
);

export const client = t.Object({
  id: t.Integer(),
  phone_number: t.String({ examples: ["79101459028"] }),
  operator_code: t.String({ examples: ["910"] }),
  tag: t.String(),
  timezone: t.String(),
  attributes: t.Record(t.String(), t.String()),
  created_at: t.String({ format: "date-time" }),
  updated_at: t.String({ format: "date-time" }),
});

export const clientList = t.Object({
  items: t.Array(client),
  next_cursor: t.Union([t.Integer(), t.Null()]),
});

export const clientQuery = t.Object({
  tag: t.Optional(t.String({ description: "Only clients with this tag" })),
  operator_code: t.Optional(t.String({ description: "Only clients with this operator code" })),
  q: t.Optional(t.String({ description: "Digits that the phone number contains" })),
  limit: t.Optional(t.String({ description: "Page size, 1–1000 (default 50)" })),
  cursor: t.Optional(t.String({ description: "next_cursor of the previous page" })),
});

export type ClientCreate = typeof clientCreate.static;
export type ClientPatch = typeof clientPatch.static;
export type ClientView = typeof client.static;
