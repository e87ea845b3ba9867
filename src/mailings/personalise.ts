/**
 * What the database says about a personalised text (issue 15 item 3), at creation and change:
 *
 * - A placeholder is known if it is a built-in (`phone_number`, `tag`), has a fallback, or is an
 *   attribute that at least one client the mailing matches has. Anything else is a 422 naming it:
 *   most likely a typo, and otherwise every message would carry a hole. (A matching client without
 *   the attribute gets the fallback, or nothing.)
 * - The SMS length of the longest rendering: each placeholder replaced by the longest value it takes
 *   among the matching clients (or its fallback, if longer), one query per distinct placeholder.
 */
import { sql } from "drizzle-orm";
import { textArray } from "../db/arrays";
import { type Executor, rowsOf } from "../db/client";
import type { FieldError } from "../problems";
import { builtInPlaceholders, placeholdersOf, smsLength, type SmsLength, substitute } from "./template";

export type Audience = { tagsFilter: string[]; codesFilter: string[] };

function matching(audience: Audience) {
  return sql`(cardinality(${textArray(audience.tagsFilter)}::text[]) = 0 or tag = any(${textArray(audience.tagsFilter)}::text[]))
    and (cardinality(${textArray(audience.codesFilter)}::text[]) = 0 or operator_code = any(${textArray(audience.codesFilter)}::text[]))`;
}

const builtIn = (name: string) => (builtInPlaceholders as readonly string[]).includes(name);

/** The text's unknown placeholders, as errors on `text`. */
export async function unknownPlaceholders(ex: Executor, text: string, audience: Audience): Promise<FieldError[]> {
  const names = [...new Set(placeholdersOf(text).filter((p) => p.fallback === null && !builtIn(p.name)).map((p) => p.name))];
  if (names.length === 0) return [];
  const rows = await rowsOf<{ name: string }>(
    ex,
    sql`select k.name from unnest(${textArray(names)}::text[]) as k(name)
        where exists (select 1 from clients where attributes ? k.name and ${matching(audience)})`,
  );
  const known = new Set(rows.map((r) => r.name));
  return names
    .filter((name) => !known.has(name))
    .map((name) => ({
      field: "text",
      message: `{{${name}}} is not a known placeholder: no matching client has the attribute "${name}" (built-ins: ${builtInPlaceholders.join(", ")}); give it a fallback, {{${name}|…}}`,
    }));
}

/** The SMS length of the text's longest rendering for the matching clients. */
export async function longestRendering(ex: Executor, text: string, audience: Audience): Promise<SmsLength> {
  const placeholders = placeholdersOf(text);
  if (placeholders.length === 0) return smsLength(text);
  const longest: Record<string, string> = {};
  for (const name of new Set(placeholders.map((p) => p.name))) {
    const value = name === "phone_number" ? sql`phone_number` : name === "tag" ? sql`tag` : sql`coalesce(attributes ->> ${name}::text, '')`;
    const [row] = await rowsOf<{ v: string }>(
      ex,
      sql`select ${value} as v from clients where ${matching(audience)} order by length(${value}) desc limit 1`,
    );
    longest[name] = row?.v ?? "";
  }
  // Each occurrence gets the longer of the longest value and its own fallback.
  return smsLength(
    substitute(text, ({ name, fallback }) => {
      const value = longest[name] ?? "";
      return fallback !== null && fallback.length > value.length ? fallback : value;
    }),
  );
}
