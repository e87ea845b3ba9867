/**
 * An API operation declared once and mounted on more than one path: the v1 route and the
 * compatibility route of the original service (SPEC §8) share the handler, the schemas and the
 * documented responses, so they cannot drift apart.
 */

/** What a handler sets on its response: Elysia's `set`, narrowed to what handlers here use. */
export type ResponseSet = { status?: number | string; headers: Record<string, string | number> };

/** The same hook, documented as a deprecated compatibility route with its own summary. */
export function deprecated<H extends { detail?: object }>(hook: H, summary: string): H {
  return { ...hook, detail: { ...hook.detail, summary, deprecated: true, tags: ["compatibility"] } };
}
