import { describe, expect, test } from "bun:test";
import { nonPagePolicy, securityHeaders } from "../../src/http/security-headers";
import { contentSecurityPolicy } from "../../src/web/security";

const page = '<!doctype html><title>t</title><script>alert(document.cookie)</script><p>hi</p>';
const html = () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
const answer = (path: string, make: () => Response) => securityHeaders(() => make())(new Request(`http://127.0.0.1${path}`));

describe("security headers wrap", () => {
  test("the OpenAPI page (/docs, /docs/) gets its inline script allowed by hash", async () => {
    for (const path of ["/docs", "/docs/"]) {
      const res = await answer(path, html);
      expect(res.headers.get("content-security-policy")).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
      expect(await res.text()).toBe(page);
    }
  });

  test("any other HTML answer without a policy gets the page policy with no hash, so its inline script never runs", async () => {
    for (const path of ["/", "/docs/json", "/docs/other", "/mailings", "/x/docs"]) {
      const res = await answer(path, html);
      const policy = res.headers.get("content-security-policy")!;
      expect(policy).toBe(contentSecurityPolicy);
      expect(policy).not.toContain("sha256-");
      expect(policy).not.toContain("unsafe-inline");
      expect(await res.text()).toBe(page);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  test("a policy the route set itself is kept; non-HTML gets the locked-down policy", async () => {
    const own = await answer("/docs", () => new Response(page, { headers: { "content-type": "text/html", "content-security-policy": "default-src 'none'" } }));
    expect(own.headers.get("content-security-policy")).toBe("default-src 'none'");
    const json = await answer("/api/v1/clients", () => Response.json({ a: 1 }));
    expect(json.headers.get("content-security-policy")).toBe(nonPagePolicy);
    expect(json.headers.get("cache-control")).toBe("no-store");
  });

  test("an immutable-headers response (a fetched one) still gets the headers", async () => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => html() });
    try {
      const fetched = await fetch(`http://127.0.0.1:${server.port}/`);
      const wrapped = await securityHeaders(() => fetched)(new Request("http://127.0.0.1/elsewhere"));
      expect(wrapped.headers.get("content-security-policy")).toBe(contentSecurityPolicy);
      expect(await wrapped.text()).toBe(page);
    } finally {
      server.stop(true);
    }
  });
});
