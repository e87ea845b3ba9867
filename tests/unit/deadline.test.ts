/** The request deadline's scope (src/db/deadline.ts); its effect on PostgreSQL is tests/integration/request-deadline.test.ts. */
import { describe, expect, test } from "bun:test";
import { underDeadline, withRequestDeadline } from "../../src/db/deadline";
import { databaseSignals } from "../../src/dispatch/signals";
import type { Database } from "../../src/db/client";
import { memoryLogger } from "../../src/ops/logger";

describe("request deadline scope", () => {
  test("binds the handler, and ends once it has answered", async () => {
    let later: Promise<boolean> | null = null;
    await withRequestDeadline(1_000, async () => {
      expect(underDeadline()).toBe(true);
      later = Bun.sleep(5).then(() => underDeadline());
    });
    expect(underDeadline()).toBe(false);
    // Work the handler left running is not bound once it has answered.
    expect(await later!).toBe(false);
  });

  test("a dispatcher woken by a request runs outside its deadline, from the start", async () => {
    const seen: boolean[] = [];
    const listener = {
      wake: () => void Promise.resolve().then(() => seen.push(underDeadline())),
      mailingChanged: () => seen.push(underDeadline()),
      clientChanged: () => seen.push(underDeadline()),
    };
    const database = { notify: async () => {} } as unknown as Database;
    const signals = databaseSignals(database, memoryLogger(), () => listener);
    await withRequestDeadline(1_000, async () => {
      signals.wake();
      signals.mailingChanged(1);
      signals.clientChanged();
      await Bun.sleep(5);
    });
    expect(seen).toEqual([false, false, false]);
  });
});
