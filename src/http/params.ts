/** Path and query parameters shared by every controller. */
import { t } from "elysia";
import { invalid } from "../problems";

const maxId = 2_147_483_647;

/** Path params with one id: documented as a string of digits, checked by `parseId`. */
export const idParams = t.Object({
  id: t.String({ description: "Positive integer id", examples: ["1"] }),
});

const idRange = `a whole number from 1 to ${maxId}`;

/** A positive 32-bit id from a path or query value; anything else is a 422 naming the field. */
export function parseId(raw: string | undefined, field = "id", accepted = idRange): number {
  if (raw === undefined || !/^\d{1,10}$/.test(raw)) throw invalid(field, `must be ${accepted}`);
  const id = Number(raw);
  if (id < 1 || id > maxId) throw invalid(field, `must be ${accepted}`);
  return id;
}

/**
 * A free-text query value compared in SQL (`?tag=`): absent → undefined; a NUL character
 * (which PostgreSQL cannot compare in `text`) or more than `max` characters → 422 naming the field.
 */
export function parseQueryText(raw: string | undefined, field: string, max = 64): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.includes("\u0000")) throw invalid(field, "must not contain NUL characters");
  if (raw.length > max && [...raw].length > max) throw invalid(field, `must be at most ${max} characters`);
  return raw;
}

export const pageQuery = {
  limit: t.Optional(t.String({ description: "Page size, 1–1000 (default 50)", examples: ["50"] })),
  cursor: t.Optional(t.String({ description: "The next_cursor of the previous page" })),
};

/** Reads `limit` (1–1000, default 50) and `cursor` (an id, or absent). */
export function parsePage(query: { limit?: string; cursor?: string }): { limit: number; cursor: number | null } {
  let limit = 50;
  if (query.limit !== undefined && query.limit !== "") {
    if (!/^\d{1,4}$/.test(query.limit) || Number(query.limit) < 1 || Number(query.limit) > 1000) {
      throw invalid("limit", "must be a whole number from 1 to 1000");
    }
    limit = Number(query.limit);
  }
  const cursor = query.cursor === undefined || query.cursor === "" ? null : parseId(query.cursor, "cursor", `the next_cursor of a previous page: ${idRange}`);
  return { limit, cursor };
}

/**
 * The `{ items, next_cursor }` page shape of every list (SPEC §8) from `limit + 1` rows read in id
 * order: one row more than the page tells that there is a next page. `view` maps each row shown.
 */
export function pageOf<R extends { id: number }, T = R>(
  rows: R[],
  limit: number,
  view: (row: R) => T = (row) => row as unknown as T,
): { items: T[]; next_cursor: number | null } {
  const shown = rows.slice(0, limit);
  return { items: shown.map(view), next_cursor: rows.length > limit ? shown.at(-1)!.id : null };
}
