/**
 * The reset of a database given back (tests/support/recycle.ts) says "clean" only when it is: a reset
 * that fails part-way, or after which rows are found again, loses the database.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { freshDatabase } from "../support/db";
import { profile, reset, type Run } from "../support/recycle";

setDefaultTimeout(60_000);

const insertClient = `insert into clients (phone_number, operator_code) values ('79100000001', '910')`;

describe("[pglite] resetting a database given back", () => {
  test("a reset interrupted part-way, or after which a straggler's row is found, does not report clean", async () => {
    const t = await freshDatabase("pglite");
    try {
      const run: Run = (text) => t.database.rows<Record<string, unknown>>(sql.raw(text));
      // A fresh copy profiles as the template does. Marked recyclable by hand: since migration 0006
      // seeds send_rate's row, the suite's templates are not (every test gets a fresh copy), but
      // what is checked here is the reset's own steps.
      const template = { ...(await profile(run)), recyclable: true };

      await run(insertClient);
      const interrupted: Run = async (text) => {
        if (text.startsWith("select setval")) throw new Error("connection lost"); // after the truncate
        return run(text);
      };
      expect(await reset(interrupted, template, { pglite: true })).toBe(false);

      await run(insertClient);
      const straggler: Run = async (text) => {
        const rows = await run(text);
        if (text.startsWith("truncate")) await run(insertClient); // a write that was on its way
        return rows;
      };
      expect(await reset(straggler, template, { pglite: true })).toBe(false);

      // An undisturbed reset of the same database is clean.
      expect(await reset(run, template, { pglite: true })).toBe(true);
      expect(await run("select count(*)::int as n from clients")).toEqual([{ n: 0 }]);
    } finally {
      await t.drop();
    }
  });
});
