/**
 * The reference point of bench/suites/api.ts: a bare Elysia route in its own Bun process, nothing else.
 *
 *   PORT=4800 bun bench/suites/api/bare-elysia.ts
 */
import { Elysia } from "elysia";

const port = Number(process.env.PORT || 4800);
new Elysia().get("/", () => "ok").listen({ port, hostname: "127.0.0.1" });
