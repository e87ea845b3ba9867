/**
 * Headers on every HTML response (SPEC §9): a Content-Security-Policy without inline scripts or
 * styles, no framing, no MIME sniffing, no full URLs leaked to other sites, and no caching of pages
 * (they show private data, and a cached page would outlive a sign-out).
 */
export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Pico draws its icons (select arrows, checkboxes) as data: SVG images.
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join("; ");

export const securityHeaders: Record<string, string> = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};
