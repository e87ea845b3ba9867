/**
 * Personalised mailing text (issue 15 item 3): `{{name}}`, `{{phone_number}}`, `{{tag}}` or any
 * client attribute, with an optional fallback `{{name|customer}}`. Rendering is plain substitution
 * of strings — nothing is evaluated — and a missing value with no fallback renders empty.
 * Also the SMS length of a text: GSM-7 (160 characters, 153 per part when split; ^{}\[~]|€ count
 * twice) unless a character is outside GSM-7 (any Cyrillic), then UCS-2 (70, 67 per part).
 */

/** Placeholders every client has. Any other name is a client attribute. */
export const builtInPlaceholders = ["phone_number", "tag"] as const;

/** `{{ name }}` or `{{ name | fallback }}`; a name is a letter or _ then letters, digits, _ (≤ 32). */
const placeholder = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,31})\s*(?:\|([^{}]*))?\}\}/g;
export const attributeName = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;

export type Placeholder = { name: string; fallback: string | null };

export function placeholdersOf(text: string): Placeholder[] {
  if (!text.includes("{{")) return [];
  return [...text.matchAll(placeholder)].map((m) => ({ name: m[1]!, fallback: m[2] === undefined ? null : m[2].trim() }));
}

/** The client's values by placeholder name (attributes, then the built-ins over them). */
export type TemplateValues = Record<string, string>;

export function render(text: string, values: TemplateValues): string {
  return substitute(text, ({ name, fallback }) => {
    const value = Object.hasOwn(values, name) ? values[name]! : "";
    return value !== "" ? value : (fallback ?? "");
  });
}

/** Replaces every placeholder by what `valueOf` says, in one pass (a value is never read again). */
export function substitute(text: string, valueOf: (p: Placeholder) => string): string {
  if (!text.includes("{{")) return text;
  return text.replace(placeholder, (_, name: string, fallback: string | undefined) =>
    valueOf({ name, fallback: fallback === undefined ? null : fallback.trim() }),
  );
}

// The GSM 03.38 basic set, and its extension table (each costs an escape, so two septets).
const gsmBasicCharacters =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const gsmExtendedCharacters = "^{}\\[~]|€\f";
const gsmBasic = new Set(gsmBasicCharacters);
const gsmExtended = new Set(gsmExtendedCharacters);
/** Every character GSM-7 can carry (basic set and extension table): anything else makes UCS-2. */
export const gsmCharacters = gsmBasicCharacters + gsmExtendedCharacters;

export type SmsLength = { encoding: "GSM-7" | "UCS-2"; characters: number; segments: number };

export function smsLength(text: string): SmsLength {
  let septets = 0;
  let gsm = true;
  for (const ch of text) {
    if (gsmBasic.has(ch)) septets += 1;
    else if (gsmExtended.has(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) return { encoding: "GSM-7", characters: septets, segments: septets <= 160 ? 1 : Math.ceil(septets / 153) };
  // UCS-2 counts UTF-16 units: an emoji (a surrogate pair) takes two.
  const units = text.length;
  return { encoding: "UCS-2", characters: units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}
