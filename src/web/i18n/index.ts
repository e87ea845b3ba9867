/**
 * Languages of the UI (SPEC §9): one catalogue per language, keyed by meaning; numbers and dates
 * through Intl. The language comes from the `lang` cookie (the switch), else Accept-Language.
 */
import { en, type MessageKey } from "./en";
import { ru } from "./ru";

export const locales = ["ru", "en"] as const;
export type Locale = (typeof locales)[number];
export const langCookie = "nst_lang";

const catalogues: Record<Locale, Record<MessageKey, string>> = { en, ru };

export function isLocale(value: string | undefined | null): value is Locale {
  return value === "ru" || value === "en";
}

/** The best supported language of an Accept-Language header (by q), English when none fits. */
export function negotiate(header: string | null): Locale {
  if (!header) return "en";
  const ranked = header
    .split(",")
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find(Boolean);
      return { lang: (tag ?? "").trim().toLowerCase().split("-")[0], q: q === undefined ? 1 : Number(q), index };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  return ranked.find((r) => isLocale(r.lang))?.lang as Locale | undefined ?? "en";
}

export type Translator = ReturnType<typeof translator>;

export function translator(locale: Locale) {
  const catalogue = catalogues[locale];
  const numbers = new Intl.NumberFormat(locale);
  const instants = new Intl.DateTimeFormat(locale, {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "UTC",
  });
  return {
    locale,
    /** The message for a key, with `{name}` placeholders filled; an unknown key shows itself. */
    t(key: string, vars: Record<string, string | number> = {}): string {
      const text = (catalogue as Record<string, string>)[key] ?? key;
      return text.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`));
    },
    num(value: number): string {
      return numbers.format(value);
    },
    /** An instant with its zone (UTC: the server does not know the reader's zone). */
    instant(value: string | Date | null): string {
      if (value === null) return "";
      return `${instants.format(new Date(value))} UTC`;
    },
    /** An instant as the wall time of a zone, the zone named. */
    zoned(epochMs: number, zone: string): string {
      const format = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone: zone });
      return format.format(new Date(epochMs));
    },
    /** A wall-clock time of a mailing (no zone: it is reached in each client's own zone). */
    wall(value: string): string {
      const [date, time] = value.split("T");
      const d = new Date(`${date}T00:00:00Z`);
      const day = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }).format(d);
      return `${day}, ${(time ?? "").slice(0, 5)}`;
    },
  };
}
