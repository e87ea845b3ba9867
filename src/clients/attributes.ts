/**
 * Client attributes (issue 15 item 3): a JSON object of strings, the values of a mailing text's
 * placeholders (`{{name}}`). At most 20 keys, each a placeholder name (letter or _, then letters,
 * digits, _; ≤ 32), not a built-in (`phone_number`, `tag`); values at most 256 characters.
 */
import type { FieldError } from "../problems";
import { attributeName, builtInPlaceholders } from "../mailings/template";

export const maxAttributes = 20;
export const maxAttributeValue = 256;

/** The attributes as given, checked; errors name the field (`attributes.name`). */
export function checkAttributes(input: unknown, field = "attributes"): { value: Record<string, string> } | { errors: FieldError[] } {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return { errors: [{ field, message: "must be a JSON object of strings" }] };
  }
  const entries = Object.entries(input as Record<string, unknown>);
  const errors: FieldError[] = [];
  if (entries.length > maxAttributes) errors.push({ field, message: `must have at most ${maxAttributes} keys` });
  const value: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (!attributeName.test(key)) errors.push({ field: `${field}.${key}`, message: "a name is a letter or _, then letters, digits or _ (at most 32)" });
    else if ((builtInPlaceholders as readonly string[]).includes(key)) errors.push({ field: `${field}.${key}`, message: "is a built-in placeholder, not an attribute" });
    else if (typeof v !== "string") errors.push({ field: `${field}.${key}`, message: "must be a string" });
    else if (v.length > maxAttributeValue) errors.push({ field: `${field}.${key}`, message: `must be at most ${maxAttributeValue} characters` });
    else value[key] = v;
  }
  return errors.length > 0 ? { errors } : { value };
}
