import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { openPostgres, preparing } from "../../src/db/client";
import { freshDatabase, type TestDatabase } from "../support/db";

setDefaultTimeout(60_000);

/** Issue 4: Drizzle's statements run as named prepared statements, up to a bounded number of texts. */
describe.skipIf(!process.env.DATABASE_URL)("[postgres] prepared statements (needs DATABASE_URL)", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase("postgres");
  });
  afterAll(async () => {
    await db.drop();
  });

  const preparedTexts = async (run: (q: string) => Promise<unknown>) => {
    const rows = (await run("select statement from pg_prepared_statements")) as { statement: string }[];
    return rows.map((r) => r.statement);
  };

  test("a Drizzle statement is prepared once per connection and reused", async () => {
    const database = openPostgres(db.url!, { max: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const [row] = await database.rows<{ n: number }>(sql`select ${i}::int + 1 as n`);
        expect(row!.n).toBe(i + 1);
      }
      const texts = await preparedTexts((q) => database.rows(sql.raw(q)));
      expect(texts.filter((t) => t.includes("select $1::int + 1 as n"))).toHaveLength(1);
    } finally {
      await database.close();
    }
  });

  test("inside a transaction too", async () => {
    const database = openPostgres(db.url!, { max: 1 });
    try {
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`select ${1}::int as in_tx`);
      });
      const texts = await preparedTexts((q) => database.rows(sql.raw(q)));
      expect(texts.some((t) => t.includes("as in_tx"))).toBe(true);
    } finally {
      await database.close();
    }
  });

  test("texts past the limit run unprepared, so a connection keeps a bounded number", async () => {
    const client = postgres(db.url!, { max: 1, onnotice: () => {} });
    const sqlWrapped = preparing(client, 2);
    try {
      // (postgres.js prepares only statements that have parameters)
      for (let i = 0; i < 5; i++) await sqlWrapped.unsafe(`select $1::int as shape_${i}`, [i]);
      const texts = ((await sqlWrapped.unsafe("select statement from pg_prepared_statements")) as unknown as { statement: string }[]).map(
        (r) => r.statement,
      );
      expect(texts.filter((t) => t.includes("as shape_")).sort()).toEqual(["select $1::int as shape_0", "select $1::int as shape_1"]);
    } finally {
      await client.end({ timeout: 5 });
    }
  });
});
