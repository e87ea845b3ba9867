/** Form values and field errors for templates: a service's Problem becomes messages beside fields. */
import { type FieldError, Problem } from "../problems";
import type { Translator } from "./i18n";

export type FieldMessages = Record<string, string>;

/** Reads string fields of a parsed form body (missing → ""). */
export function formValues<K extends string>(body: unknown, names: readonly K[]): Record<K, string> {
  const source = body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const out = {} as Record<K, string>;
  for (const name of names) {
    const value = source[name];
    out[name] = typeof value === "string" ? value : "";
  }
  return out;
}

/**
 * The message shown beside each field, from the catalogue: `<entity>.error.<field>` (and
 * `….taken` for a conflict); the service's English message only when the catalogue has none.
 */
export function fieldMessages(tr: Translator, entity: string, errors: FieldError[], status = 422): FieldMessages {
  const out: FieldMessages = {};
  for (const error of errors) {
    const key = `${entity}.error.${error.field}${status === 409 ? ".taken" : ""}`;
    const text = tr.t(key);
    out[error.field] = text === key ? error.message : text;
  }
  return out;
}

/** Runs a service call; a Problem with field errors comes back as a value, anything else is rethrown. */
export async function attempt<T>(run: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; problem: Problem }> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    if (error instanceof Problem && error.status < 500) return { ok: false, problem: error };
    throw error;
  }
}
