/**
 * The claim and the claim check answer alike as rows and as one JSON value (src/dispatch/claim.ts,
 * answerRows) in every state a claimed message can be in: its client or mailing gone, a paused or
 * cancelled mailing, a client no longer matching, placeholder values that are not strings, a row
 * taken over from a lease that ran out. Each claim runs in a transaction rolled back, so both
 * answers read the same rows.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { checkClaims, claimDue, type ClaimedMessage } from "../../src/dispatch/claim";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

setDefaultTimeout(60_000);

const day = "2026-12-01";

class Rollback extends Error {
  constructor(readonly claimed: ClaimedMessage[]) {
    super("rollback");
  }
}

for (const backend of backends()) {
  describe(`[${backend}] claims answered as JSON, in every state`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("read the same as rows", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      for (let i = 0; i < 8; i++) await e.client(`7910123456${i}`, i % 2 ? "Europe/Moscow" : "Asia/Kolkata", i % 3 ? "vip" : "");
      // Placeholder values of every JSON type, and text that needs escaping.
      await e.database.rows(sql`update clients set attributes = jsonb_build_object('city', 'Пермь "центр"\n', 'n', 1.5, 'big', 9007199254740993, 'flag', true, 'nothing', null, 'list', jsonb_build_array(1, 'a'))`);
      const withPlaceholders = await e.mailing({ text: "Hello {{tag}} {{city}}", start_time: `${day}T00:00:00`, end_time: `${day}T23:00:00` });
      const plain = await e.mailing({ text: "plain", start_time: `${day}T00:00:00`, end_time: `${day}T23:00:00` });
      await e.dispatcher.stop();
      const db = e.database.db;
      const [some] = await e.database.rows<{ id: number; client_id: number }>(sql`select id, client_id from messages where mailing_id = ${withPlaceholders} order by id limit 1`);
      await e.database.rows(sql`delete from clients where id = ${some!.client_id}`);
      await e.database.rows(sql`update clients set tag = 'other' where id = (select client_id from messages where mailing_id = ${plain} order by id desc limit 1)`);
      await e.database.rows(sql`update messages set last_error = 'timeout', status = 'sending', attempts = 3, next_attempt_at = ${`${day}T09:00:00Z`}::timestamptz where id = (select max(id) from messages where mailing_id = ${withPlaceholders})`);
      await e.database.rows(sql`insert into blocklist (phone_number) select phone_number from messages where mailing_id = ${plain} order by id limit 1`);

      const claimBoth = async () => {
        const answers: ClaimedMessage[][] = [];
        for (const json of [false, true]) {
          try {
            await db.transaction(async (tx) => {
              throw new Rollback(await claimDue(tx, e.clock.now(), 100, 60, { json }));
            });
          } catch (error) {
            if (!(error instanceof Rollback)) throw error;
            answers.push(error.claimed);
          }
        }
        const byId = (list: ClaimedMessage[]) => [...list].sort((a, b) => a.id - b.id);
        return [byId(answers[0]!), byId(answers[1]!)] as const;
      };
      const [rows, json] = await claimBoth();
      expect(rows.length).toBeGreaterThan(8);
      expect(json).toEqual(rows);
      expect(rows.some((c) => c.check.timezone === "" && !c.check.clientMatches)).toBe(true);
      expect(rows.some((c) => c.waitingStatus === "retrying")).toBe(true);
      expect(rows.find((c) => c.values?.city)!.values).toMatchObject({ city: 'Пермь "центр"\n', n: 1.5, flag: true, nothing: null });

      // The mailings paused, cancelled, and one gone: the checks read the same both ways.
      await e.database.rows(sql`update mailings set paused = true where id = ${withPlaceholders}`);
      await e.database.rows(sql`delete from mailings where id = ${plain}`);
      const claims = rows.map((c) => ({ id: c.id, attempts: c.attempts - 1 }));
      expect(await checkClaims(db, claims, { json: true })).toEqual(await checkClaims(db, claims));
      const [paused, gone] = await claimBoth();
      expect(gone).toEqual(paused);
      expect(paused.some((c) => c.check.cancelled)).toBe(true);
      expect(paused.some((c) => c.check.paused)).toBe(true);
    });
  });
}
