/**
 * PostgreSQL array literals, each passed as one text parameter and cast in SQL (`${intArray(ids)}::int[]`).
 * Drizzle's `sql` expands a JS array into a list of parameters, which is not what `= any(…)` or
 * `unnest(…)` want; and one array parameter is cheaper to parse and plan than a jsonb document.
 */

/** `{1,2,3}`; throws on anything but safe integers, so nothing else can reach the SQL. */
export function intArray(values: number[]): string {
  for (const v of values) if (!Number.isSafeInteger(v)) throw new TypeError(`not an integer: ${v}`);
  return `{${values.join(",")}}`;
}

/** A PostgreSQL array literal of texts, every element double-quoted (NULL for null), as one text parameter. */
export function textArray(values: (string | null)[]): string {
  return `{${values.map((v) => (v === null ? "NULL" : `"${v.replace(/[\\"]/g, "\\$&")}"`)).join(",")}}`;
}
