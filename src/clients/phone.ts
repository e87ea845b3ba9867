/**
 * Phone normalisation (SPEC §3): every accepted form becomes `7XXXXXXXXXX`.
 *   79101459028, "79101459028", "+7 (910) 145-90-28", "89101459028", "9101459028" → "79101459028"
 */
export type PhoneResult = { ok: true; phone: string; operatorCode: string } | { ok: false; message: string };

const allowed = /^\+?[\d\s()\-]+$/;

export function normalizePhone(input: unknown): PhoneResult {
  let text: string;
  if (typeof input === "number") {
    if (!Number.isInteger(input) || input < 0) {
      return { ok: false, message: 'must be a whole number such as 79101459028, or a string such as "+7 (910) 145-90-28"' };
    }
    // Beyond 2^53 a JSON number has lost digits; it is far longer than any phone number anyway.
    text = Number.isSafeInteger(input) ? String(input) : "0";
  } else if (typeof input === "string") {
    text = input.trim();
  } else {
    return { ok: false, message: "must be a string or a number" };
  }
  if (!allowed.test(text)) {
    return { ok: false, message: "may contain only digits, spaces, brackets, dashes and a leading +" };
  }
  const plus = text.startsWith("+");
  let digits = text.replace(/\D/g, "");
  if (digits.length === 10 && !plus) digits = "7" + digits;
  else if (digits.length === 11 && digits.startsWith("8") && !plus) digits = "7" + digits.slice(1);
  if (digits.length !== 11 || !digits.startsWith("7")) {
    return { ok: false, message: "must be a Russian number: 7XXXXXXXXXX, +7 …, 8XXXXXXXXXX or 10 digits" };
  }
  return { ok: true, phone: digits, operatorCode: digits.slice(1, 4) };
}
