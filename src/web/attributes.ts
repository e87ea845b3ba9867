/**
 * The clients form's `attributes` field (issue 15 item 3): one `name=value` a line, the way a
 * person writes them. Checked by the same rules as the API (clients/attributes.ts), with messages
 * from the catalogue that name the line; the service checks again when it stores them.
 */
import { maxAttributes, maxAttributeValue } from "../clients/attributes";
import { attributeName, builtInPlaceholders } from "../mailings/template";
import type { Translator } from "./i18n";

/** The stored attributes as the textarea shows them, in name order. */
export function attributeLines(attributes: Record<string, string>): string {
  return Object.keys(attributes)
    .sort()
    .map((name) => `${name}=${attributes[name]}`)
    .join("\n");
}

/** True when some value cannot be written on one line (set through the API): the form leaves them alone. */
export function attributesNeedApi(attributes: Record<string, string>): boolean {
  return Object.values(attributes).some((value) => /[\r\n]/.test(value) || value !== value.trim());
}

/**
 * The textarea's text as attributes, or the messages for the field. Blank lines are skipped; the
 * name and the value lose the spaces around them; a value may hold `=`.
 */
export function parseAttributeLines(text: string, tr: Translator): { value: Record<string, string> } | { error: string } {
  const value = new Map<string, string>();
  const problems: string[] = [];
  let count = 0;
  text.split(/\r\n|\r|\n/).forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === "") return;
    const at = raw.indexOf("=");
    if (at < 0) return void problems.push(tr.t("clients.attributes.error.line", { line }));
    const name = raw.slice(0, at).trim();
    const v = raw.slice(at + 1).trim();
    if (!attributeName.test(name)) problems.push(tr.t("clients.attributes.error.name", { line, name }));
    else if ((builtInPlaceholders as readonly string[]).includes(name)) problems.push(tr.t("clients.attributes.error.builtIn", { line, name }));
    else if (value.has(name)) problems.push(tr.t("clients.attributes.error.twice", { line, name }));
    else if (v.length > maxAttributeValue) problems.push(tr.t("clients.attributes.error.long", { line, name, max: maxAttributeValue }));
    else {
      value.set(name, v);
      count++;
    }
  });
  if (count > maxAttributes) problems.push(tr.t("clients.attributes.error.count", { max: maxAttributes }));
  return problems.length > 0 ? { error: problems.join(" ") } : { value: Object.fromEntries(value) };
}
