/**
 * 405 for a wrong method on a path that exists (RFC 9110 §15.5.6): Elysia answers every unmatched
 * request with NOT_FOUND, so its error handler asks here which methods the path does have and sends
 * them in `Allow`. Only requests that matched no route get here; routing itself is untouched.
 */
type Route = { method: string; path: string };

/** Compiled on first use: the routes are all registered by then and never change afterwards. */
let compiled: { routes: readonly Route[]; patterns: { pattern: RegExp; methods: Set<string> }[] } | null = null;

const trimSlash = (path: string) => (path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path);

function compile(routes: readonly Route[]) {
  const byPath = new Map<string, Set<string>>();
  for (const route of routes) {
    if (route.method === "ALL" || route.method === "WS") continue;
    const path = trimSlash(route.path);
    const methods = byPath.get(path) ?? new Set<string>();
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
    byPath.set(path, methods);
  }
  return [...byPath].map(([path, methods]) => ({
    pattern: new RegExp(
      "^" + path.split("/").map((part) => (part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/") + "$",
    ),
    methods,
  }));
}

/** The methods some route serves at `path` (sorted, HEAD wherever GET is), or none if no route has the path. */
export function allowedMethods(routes: readonly Route[], path: string): string[] {
  if (compiled?.routes !== routes || compiled.patterns.length === 0) compiled = { routes, patterns: compile(routes) };
  const wanted = trimSlash(path);
  const methods = new Set<string>();
  for (const { pattern, methods: m } of compiled.patterns) if (pattern.test(wanted)) for (const method of m) methods.add(method);
  return [...methods].sort();
}
