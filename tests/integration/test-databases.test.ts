/**
 * The suite's own databases (tests/support/db.ts, recycle.ts): a database a test gave back is handed
 * to the next one only as isolated as a fresh copy of the migrated template.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { openPostgres } from "../../src/db/client";
import { backends, freshDatabase } from "../support/db";

setDefaultTimeout(60_000);

const insertClient = (phone: string) =>
  sql`insert into clients (phone_number, operator_code) values (${phone}, '910') returning id`;
const count = async (t: Awaited<ReturnType<typeof freshDatabase>>, table: string) =>
  (await t.database.rows<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table)}`))[0]!.n;

for (const backend of backends()) {
  describe(`[${backend}] test databases`, () => {
    test("a database comes back empty, with ids from 1 and no counter rows", async () => {
      const first = await freshDatabase(backend);
      await first.database.rows(insertClient("79100000001"));
      await first.database.rows(insertClient("79100000002"));
      await first.database.rows(sql`insert into mailing_counts (mailing_id, status, shard, n) values (1, 'sent', 0, 5)`);
      await first.drop();
      const second = await freshDatabase(backend);
      try {
        expect(await count(second, "clients")).toBe(0);
        expect(await count(second, "mailing_counts")).toBe(0);
        expect(await second.database.rows(insertClient("79100000003"))).toEqual([{ id: 1 }]);
        expect(await second.database.migrationsApplied()).toBe(true);
      } finally {
        await second.drop();
      }
    });

    test("what a test still holds of a database it gave back fails, as on a closed one", async () => {
      const first = await freshDatabase(backend);
      const stale = first.database;
      await first.drop();
      const second = await freshDatabase(backend);
      try {
        await expect(stale.rows(insertClient("79100000004"))).rejects.toThrow();
        expect(await count(second, "clients")).toBe(0);
      } finally {
        await second.drop();
      }
    });

    test("a database whose schema a test changed is not handed out again", async () => {
      const first = await freshDatabase(backend);
      await first.database.rows(sql`create table leftover (id int)`);
      await first.database.rows(sql`alter table clients add column extra text`);
      await first.drop();
      const second = await freshDatabase(backend);
      try {
        const found = await second.database.rows(sql`
          select table_name, column_name from information_schema.columns
          where table_schema = 'public' and (table_name = 'leftover' or column_name = 'extra')`);
        expect(found).toEqual([]);
      } finally {
        await second.drop();
      }
    });

    test("session state and an open transaction do not carry over", async () => {
      const first = await freshDatabase(backend, { max: 1 }); // one connection: postgres.js allows a bare BEGIN
      await first.database.rows(sql`set time zone 'Asia/Tokyo'`);
      await first.database.rows(sql`begin`);
      await first.database.rows(insertClient("79100000005"));
      await first.drop();
      const second = await freshDatabase(backend);
      try {
        const [zone] = await second.database.rows<{ TimeZone: string }>(sql`show time zone`);
        expect(zone!.TimeZone).not.toBe("Asia/Tokyo");
        expect(await count(second, "clients")).toBe(0);
      } finally {
        await second.drop();
      }
    });

    test("two databases at once are two databases", async () => {
      const [a, b] = [await freshDatabase(backend), await freshDatabase(backend)];
      try {
        await a.database.rows(insertClient("79100000006"));
        expect(await count(b, "clients")).toBe(0);
      } finally {
        await a.drop();
        await b.drop();
      }
    });
  });
}

describe.skipIf(!process.env.DATABASE_URL)("[postgres] test databases: pools a test left open (needs DATABASE_URL)", () => {
  test("a pool left open on a database given back cannot reach the next test's", async () => {
    const first = await freshDatabase("postgres");
    const leftOpen = openPostgres(first.url!, { max: 1 });
    await leftOpen.rows(sql`select 1`);
    await first.drop();
    const second = await freshDatabase("postgres");
    try {
      await expect(leftOpen.rows(insertClient("79100000007"))).rejects.toThrow();
      expect(await count(second, "clients")).toBe(0);
    } finally {
      await leftOpen.close();
      await second.drop();
    }
  });
});

describe("[pglite] test databases: giving back twice", () => {
  test("a database given back twice goes to one test, not two", async () => {
    const first = await freshDatabase("pglite");
    await Promise.all([first.drop(), first.drop()]);
    const [a, b] = [await freshDatabase("pglite"), await freshDatabase("pglite")];
    try {
      await a.database.rows(insertClient("79100000008"));
      expect(await count(b, "clients")).toBe(0);
    } finally {
      await a.drop();
      await b.drop();
    }
  });
});
