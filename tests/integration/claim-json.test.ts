/**
 * Embedded PGlite claims and re-checks claimed messages with one json_agg answer instead of a row
 * per message (src/dispatch/claim.ts, answerRows; issue 16, target 3: the memory of decoding rows).
 * Both answers must read the same: ids, numbers, booleans, the placeholder values, time zones.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { checkClaims, claimDue } from "../../src/dispatch/claim";
import { backends } from "../support/db";
import { type TestEngine, testEngine } from "../support/engine";

setDefaultTimeout(60_000);

const day = "2026-12-01";

for (const backend of backends()) {
  describe(`[${backend}] claims answered as JSON`, () => {
    let e: TestEngine;
    afterEach(() => e?.close());

    test("a claim and a claim check read the same as rows and as one JSON value", async () => {
      e = await testEngine(backend, { now: `${day}T10:00:00Z` });
      await e.client("79101234567", "Europe/Moscow", "vip");
      await e.client("79101234568", "UTC", "vip");
      await e.mailing({ text: "Hello {{tag}}", start_time: `${day}T00:00:00`, end_time: `${day}T23:00:00` });
      await e.dispatcher.stop();
      const asRows = await claimDue(e.database.db, e.clock.now(), 1, 60);
      const asJson = await claimDue(e.database.db, e.clock.now(), 1, 60, { json: true });
      expect(asRows).toHaveLength(1);
      expect(asJson).toHaveLength(1);
      expect(asJson[0]!.id).not.toBe(asRows[0]!.id);
      for (const claimed of [asRows[0]!, asJson[0]!]) {
        expect(typeof claimed.id).toBe("number");
        expect(typeof claimed.mailingId).toBe("number");
        expect(typeof claimed.clientId).toBe("number");
        expect(claimed.attempts).toBe(1);
        expect(Number.isFinite(claimed.expiresAt)).toBe(true);
        expect(claimed.waitingStatus).toBe("scheduled");
        expect(claimed.values).toEqual({ tag: "vip" });
        expect(claimed.check).toMatchObject({ clientMatches: true, paused: false, cancelled: false });
        expect(Number.isFinite(claimed.check.dueAt)).toBe(true);
      }
      const claims = [...asRows, ...asJson];
      const checkedRows = await checkClaims(e.database.db, claims);
      const checkedJson = await checkClaims(e.database.db, claims, { json: true });
      expect(checkedJson).toEqual(checkedRows);
      expect([...checkedJson.values()].map((c) => c.timezone).sort()).toEqual(["Europe/Moscow", "UTC"]);
      // Nothing changed since the claims: what each claim read is what the re-check reads.
      for (const claimed of claims) expect(claimed.check).toEqual(checkedRows.get(claimed.id)!);
      // A claim with nothing due answers an empty list both ways.
      expect(await claimDue(e.database.db, e.clock.now(), 1, 60, { json: true })).toEqual([]);
      expect(await checkClaims(e.database.db, [{ id: -1, attempts: 1 }], { json: true })).toEqual(new Map());
    });
  });
}
