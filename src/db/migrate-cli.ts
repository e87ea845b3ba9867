/** `bun run db:migrate`: applies pending migrations and exits. */
import { loadConfig } from "../config";
import { openDatabase } from "./client";

const config = loadConfig();
const database = await openDatabase(config);
const applied = await database.migrate();
console.log(JSON.stringify({ level: "info", msg: "migrations applied", driver: database.kind, applied }));
await database.close();
