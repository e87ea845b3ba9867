/**
 * The events of the audit log (SPEC §9), a closed list: the API filters by these names and the UI
 * shows each through its catalogue entry `audit.kind.<name>`.
 */
export const auditKinds = [
  "signin.password",
  "signin.oauth",
  "signin.failed",
  "oauth.refused",
  "user.role",
  "user.disabled",
  "user.enabled",
  "token.created",
  "token.revoked",
  "mailing.deleted",
  "mailing.cancelled",
  "blocklist.added",
  "blocklist.removed",
] as const;

export type AuditKind = (typeof auditKinds)[number];

export function isAuditKind(value: string): value is AuditKind {
  return (auditKinds as readonly string[]).includes(value);
}
