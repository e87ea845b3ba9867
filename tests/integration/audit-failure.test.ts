/**
 * Issue 12: the audit record is written after its action. When that write fails, the action has
 * happened all the same: the answer must say so (never a 500), and the failure is logged.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { backends } from "../support/db";
import { type TestApp, testApp } from "../support/app";

setDefaultTimeout(60_000);

for (const backend of backends()) {
  describe(`[${backend}] an audit write that fails`, () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await testApp(backend);
      // Every insert into the audit log fails from here on.
      await app.database.db.execute(sql`
        create function refuse_audit() returns trigger language plpgsql as $$
        begin raise exception 'audit log unavailable'; end $$`);
      await app.database.db.execute(sql`
        create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()`);
    });
    afterAll(() => app.close());

    test("creating a token still answers 201 with the secret, and the failure is logged", async () => {
      const created = await app.request("POST", "/api/v1/tokens", { name: "ci" });
      expect(created.status).toBe(201);
      expect(typeof created.body.token).toBe("string");
      const listed = await app.request("GET", "/api/v1/tokens");
      expect(listed.body.items.map((t: { name: string }) => t.name)).toContain("ci");
      const line = app.logger.lines.find((l) => l.msg === "audit record failed");
      expect(line?.kind).toBe("token.created");
      expect(JSON.stringify(app.logger.lines)).not.toContain(created.body.token);
    });
  });
}
