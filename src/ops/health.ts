/** /healthz (the process answers) and /readyz (database reachable, migrations applied), SPEC §10. */
import { sql } from "drizzle-orm";
import { Elysia } from "elysia";
import type { Database } from "../db/client";

/**
 * /readyz answers within this even when the database does not (a connection attempt can take
 * DB_CONNECT_TIMEOUT_MS, a blocked server longer): a probe that hangs tells a load balancer nothing.
 */
export const readyTimeoutMs = 900;

type Readiness = "ready" | "migrations pending" | "database unreachable";

async function check(database: Database): Promise<Readiness> {
  await database.rows(sql`select 1`);
  return (await database.migrationsApplied()) ? "ready" : "migrations pending";
}

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
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<Readiness>((resolve) => (timer = setTimeout(() => resolve("database unreachable"), readyTimeoutMs)));
        // A check still running when the time is up ends on its own (bounded by the driver's timeouts).
        const status = await Promise.race([check(database).catch((): Readiness => "database unreachable"), late]);
        clearTimeout(timer);
        if (status === "ready") return { status, database: database.kind };
        set.status = 503;
        set.headers["retry-after"] = "2";
        return { status };
      },
      { detail: { summary: "The database is reachable and every migration is applied", security: [] } },
    );
}
