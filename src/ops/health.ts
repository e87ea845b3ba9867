/** /healthz (the process answers) and /readyz (database reachable, migrations applied), SPEC §10. */
import { sql } from "drizzle-orm";
import { Elysia } from "elysia";
import type { Database } from "../db/client";

export function healthRoutes(database: Database, stopping: () => boolean = () => false) {
  return new Elysia({ tags: ["operations"] })
    .get("/healthz", () => ({ status: "ok" }), { detail: { summary: "The process is up", security: [] } })
    .get(
      "/readyz",
      async ({ set }) => {
        // From the shutdown signal on, load balancers must stop sending new requests here.
        if (stopping()) {
          set.status = 503;
          return { status: "shutting down" };
        }
        try {
          await database.rows(sql`select 1`);
          if (!(await database.migrationsApplied())) {
            set.status = 503;
            return { status: "migrations pending" };
          }
          return { status: "ready", database: database.kind };
        } catch {
          set.status = 503;
          return { status: "database unreachable" };
        }
      },
      { detail: { summary: "The database is reachable and every migration is applied", security: [] } },
    );
}
