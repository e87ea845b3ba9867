/**
 * Authentication of API requests (SPEC §8): `Authorization: Bearer <token>` with a personal API
 * token or ADMIN_API_KEY. Every route mounted behind `apiGuard` needs it; no credentials → 401.
 */
import { Elysia } from "elysia";
import { Problem } from "../problems";
import { type Actor, adminKeyActor } from "./actor";
import { constantTimeEqual, sha256Hex } from "./crypto";
import type { TokenService } from "./tokens";

function unauthorized(detail: string): Problem {
  return new Problem(401, detail, [{ field: "authorization", message: detail }], {
    "www-authenticate": 'Bearer realm="api"',
  });
}

/** Resolves the actor of a request, or throws a 401 problem. */
export async function authenticate(
  request: Request,
  tokens: TokenService,
  adminKeyHash: string | null,
): Promise<Actor> {
  const header = request.headers.get("authorization");
  if (!header) throw unauthorized("credentials are required: Authorization: Bearer <token>");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized("the Authorization header must be: Bearer <token>");
  const secret = match[1]!;
  if (adminKeyHash && constantTimeEqual(await sha256Hex(secret), adminKeyHash)) return adminKeyActor;
  const actor = await tokens.authenticate(secret);
  if (!actor) throw unauthorized("the token is unknown or revoked");
  return actor;
}

export type ApiGuard = ReturnType<typeof apiGuard>;

/**
 * An Elysia instance whose routes (and those of plugins used on it) all require a bearer token.
 * `derive` runs before schema validation (`resolve` would run after it), so a caller without
 * credentials gets a 401, never a 422 that describes the schema of a route it may not use.
 */
export function apiGuard(tokens: TokenService, adminKeyHash: string | null) {
  return new Elysia({ name: "api-guard" }).derive({ as: "scoped" }, async ({ request }) => ({
    actor: await authenticate(request, tokens, adminKeyHash),
  }));
}
