/** Recognising database errors by SQLSTATE, whichever driver raised them (Drizzle may wrap them). */
export function sqlState(error: unknown): string | null {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

export const uniqueViolation = "23505";

/** postgres.js's own codes and the socket errors it passes on, for a connection that failed or broke. */
const connectionCodes = new Set([
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * SQLSTATEs that mean "not now" rather than "wrong": connection exceptions (08…), insufficient
 * resources (53…, such as 53300 too many connections), the server shutting down or starting
 * (57P01–57P03), a statement cancelled by statement_timeout (57014) and a transaction ended by
 * idle_in_transaction_session_timeout (25P03).
 */
function transientState(state: string): boolean {
  return state.startsWith("08") || state.startsWith("53") || ["57P01", "57P02", "57P03", "57014", "25P03"].includes(state);
}

/** True when `error` (or a cause, Drizzle wraps the driver's error) says the database is unavailable. */
export function databaseUnavailable(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== null) return transientState(state);
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && connectionCodes.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
