/**
 * What a new user sees at the first start (issue 10, item 9): when nobody can sign in yet, how to
 * get the first credentials (the line announcing the embedded database is embeddedDatabaseLine in
 * db/embedded-image.ts). The wording lives here so that it changes in one place.
 */
import { count, isNull } from "drizzle-orm";
import type { Database } from "../db/client";
import { apiTokens, users } from "../db/schema";

/** True when no one can call the API: no ADMIN_API_KEY, no user and no live API token. */
export async function nobodyCanSignIn(database: Database, adminApiKey: string | null): Promise<boolean> {
  if (adminApiKey) return false;
  const [people] = await database.db.select({ n: count() }).from(users);
  const [tokens] = await database.db.select({ n: count() }).from(apiTokens).where(isNull(apiTokens.revokedAt));
  return Number(people?.n ?? 0) === 0 && Number(tokens?.n ?? 0) === 0;
}

/**
 * How to get in when nobody can, as plain lines for a person at a terminal (stderr, like the
 * configuration errors): the registration page when it is open, and ADMIN_API_KEY for the API.
 */
export function firstCredentials(baseUrl: string, registrationOpen: boolean): string {
  const browser = registrationOpen
    ? ["In a browser, create the first (admin) account at:", "", `  ${baseUrl}/register`, "", "For the API (or with REGISTRATION=closed), start it with an admin key:"]
    : ["REGISTRATION=closed, so nobody can register. Start it with an admin key:"];
  return [
    "",
    "No credentials yet: every /api/v1 call answers 401 until an account or an admin key exists.",
    ...browser,
    "",
    "  export ADMIN_API_KEY=$(openssl rand -hex 32)",
    "  echo $ADMIN_API_KEY",
    "  bun run start",
    "",
    "then call the API with it:",
    "",
    `  curl -H "Authorization: Bearer $ADMIN_API_KEY" ${baseUrl}/api/v1/clients`,
    "",
  ].join("\n");
}
