/**
 * Templates (SPEC §9): Eta renders the files in templates/, escaping every `<%= %>` by default.
 * A page template wraps itself in the layout unless `it.fragment` is set: an htmx request gets
 * the same template without the layout.
 */
import { Eta } from "eta";
import { resourcePath } from "../resources";
import { securityHeaders } from "./security";

export const templatesDir = resourcePath("templates/");

export const eta = new Eta({ views: templatesDir, autoEscape: true, cache: true, autoTrim: [false, "nl"] });

export function htmlResponse(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/html; charset=utf-8", ...securityHeaders, ...headers },
  });
}

/** A redirect after a form post (303: the browser follows with GET); htmx is told to navigate. */
export function redirect(to: string, htmx: boolean, headers: Record<string, string> = {}): Response {
  if (htmx) return htmlResponse("", 200, { "hx-redirect": to, ...headers });
  return new Response(null, { status: 303, headers: { location: to, ...securityHeaders, ...headers } });
}
