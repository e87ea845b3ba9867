/**
 * What the database says about a personalised text (issue 15 item 3), at creation and change:
 *
 * - A placeholder is known if it is a built-in (`phone_number`, `tag`), has a fallback, or is an
 *   attribute that at least one client the mailing matches has. Anything else is a 422 naming it:
 *   most likely a typo, and otherwise every message would carry a hole. (A matching client without
 *   the attribute gets the fallback, or nothing.)
 * - The SMS length of the longest rendering, in segments (then characters): each placeholder replaced
 *   by the longest value it takes among the matching clients that GSM-7 can carry, or the longest
 *   that needs UCS-2, or its fallback, whichever costs most; one query per distinct placeholder.
 */
import { sql } from "drizzle-orm";
import { textArray } from "../db/arrays";
import { type Executor, rowsOf } from "../db/client";
import type { FieldError } from "../problems";
import { builtInPlaceholders, gsmCharacters, placeholdersOf, smsLength, type SmsLength, substitute } from "./template";

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
  // Per placeholder, the longest value that GSM-7 can carry and the longest that needs UCS-2: a
  // shorter Cyrillic value can cost more segments than a longer Latin one. "" stands for a client
  // without the value, who gets the occurrence's fallback.
  const candidates = new Map<string, string[]>();
  for (const name of new Set(placeholders.map((p) => p.name))) {
    const value = name === "phone_number" ? sql`phone_number` : name === "tag" ? sql`tag` : sql`coalesce(attributes ->> ${name}::text, '')`;
    const rows = await rowsOf<{ v: string }>(
      ex,
      sql`select distinct on (gsm) v
          from (select v, translate(v, ${gsmCharacters}, '') = '' as gsm
                from (select ${value} as v from clients where ${matching(audience)}) values) s
          order by gsm, length(v) desc`,
    );
    candidates.set(name, [...new Set([...rows.map((r) => r.v), ""])]);
  }
  const renderWith = (choice: Map<string, string>) =>
    substitute(text, ({ name, fallback }) => {
      const value = choice.get(name) ?? "";
      return value !== "" ? value : (fallback ?? "");
    });
  const worse = (a: SmsLength, b: SmsLength) => (a.segments !== b.segments ? a.segments > b.segments : a.characters > b.characters);
  const names = [...candidates.keys()];
  const combinations = names.reduce((n, name) => n * candidates.get(name)!.length, 1);
  if (combinations <= 256) {
    // Each combination of candidates (placeholders taken independently, as one client might have them).
    let worst: SmsLength | null = null;
    for (let index = 0; index < combinations; index++) {
      const choice = new Map<string, string>();
      let rest = index;
      for (const name of names) {
        const values = candidates.get(name)!;
        choice.set(name, values[rest % values.length]!);
        rest = Math.floor(rest / values.length);
      }
      const length = smsLength(renderWith(choice));
      if (worst === null || worse(length, worst)) worst = length;
    }
    return worst!;
  }
  // Many placeholders: every one at its longest, counted as UCS-2 if any value needs it.
  const rendering = renderWith(new Map(names.map((name) => [name, candidates.get(name)!.reduce((a, b) => (b.length > a.length ? b : a))])));
  const length = smsLength(rendering);
  const needsUcs2 = names.some((name) => candidates.get(name)!.some((v) => smsLength(v).encoding === "UCS-2"));
  if (!needsUcs2 || length.encoding === "UCS-2") return length;
  return { encoding: "UCS-2", characters: rendering.length, segments: rendering.length <= 70 ? 1 : Math.ceil(rendering.length / 67) };
}
