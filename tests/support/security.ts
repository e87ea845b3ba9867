/** Checks shared by the security tests (security.test.ts, access-matrix.test.ts). */

/** The three headers every answer carries, whatever it is (404, 405, 413, a problem, a file, a redirect). */
export function securityHeaderFaults(label: string, headers: Headers): string[] {
  const faults: string[] = [];
  const csp = headers.get("content-security-policy") ?? "";
  if (!/frame-ancestors 'none'/.test(csp)) faults.push(`${label}: CSP without frame-ancestors 'none' (${csp || "none"})`);
  if (/script-src[^;]*'unsafe-inline'/.test(csp)) faults.push(`${label}: CSP allows inline scripts`);
  if (headers.get("x-content-type-options") !== "nosniff") faults.push(`${label}: X-Content-Type-Options ${headers.get("x-content-type-options")}`);
  if (!headers.get("referrer-policy")) faults.push(`${label}: no Referrer-Policy`);
  return faults;
}
