/**
 * Side measurement for BENCHMARKS.md (not a suite): client CPU per statement of postgres.js (the
 * service's driver) and Bun's native Bun.SQL, for a statement shaped like a group commit of 44
 * results (one JSON parameter through jsonb_to_recordset). 3,000 statements each, one connection.
 *
 *   bun bench/experiments/pg-client.ts
 */
import postgres from "postgres";
import { databaseUrl } from "../support";

const payload = JSON.stringify(
  Array.from({ length: 44 }, (_, i) => ({ id: i, attempts: 1, status: "sent", next_attempt_at: null, last_error: null, unsent: false })),
);

async function measure(name: string, query: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 300; i++) await query();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const n = 3000;
  for (let i = 0; i < n; i++) await query();
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - started;
  console.log(`${name}: wall ${Math.round((ms * 1000) / n)} µs/statement, client CPU ${Math.round((used.user + used.system) / n)} µs/statement`);
}

const pj = postgres(databaseUrl, { max: 1, onnotice: () => {} });
await measure("postgres.js", () => pj`select count(*) from jsonb_to_recordset(${payload}::text::jsonb) as r(id int)`);
await pj.end();
const native = new Bun.SQL(databaseUrl, { max: 1 });
await measure("Bun.SQL", () => native`select count(*) from jsonb_to_recordset(${payload}::text::jsonb) as r(id int)`);
await native.close();
