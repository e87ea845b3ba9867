/** The dispatcher's parts that need no database: semaphore, change signal, mailing cache, claim checks. */
import { describe, expect, test } from "bun:test";
import type { ClaimCheck, ClaimedMessage, MailingState } from "../../src/dispatch/claim";
import { ClaimChecks } from "../../src/dispatch/claim-checks";
import { ChangeSignal, Semaphore } from "../../src/dispatch/concurrency";
import { MailingCache } from "../../src/dispatch/mailing-cache";

const check: ClaimCheck = { clientMatches: true, timezone: "UTC", paused: false, cancelled: false, dueAt: 0, expiresAt: Date.now() + 3_600_000 };
const claimed = (id: number): ClaimedMessage => ({
  id,
  mailingId: 1,
  clientId: id,
  phone: "79101234567",
  attempts: 1,
  expiresAt: Date.now() + 3_600_000,
  leaseUntil: Date.now() + 60_000,
  waitingStatus: "scheduled",
  values: null,
  check,
});

describe("Semaphore", () => {
  test("at most `permits` holders; a released permit goes to the longest waiter", async () => {
    const s = new Semaphore(2);
    await s.acquire();
    await s.acquire();
    const order: number[] = [];
    const third = s.acquire().then(() => order.push(3));
    const fourth = s.acquire().then(() => order.push(4));
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(s.inUse).toBe(2);
    s.release();
    await third;
    expect(order).toEqual([3]);
    s.release();
    await fourth;
    expect(order).toEqual([3, 4]);
    s.release();
    s.release();
    expect(s.inUse).toBe(0);
  });

  test("no permit at all is refused", () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});

describe("ChangeSignal", () => {
  test("every waiter wakes at the next notify, and only then", async () => {
    const changes = new ChangeSignal();
    let woken = 0;
    const waits = [changes.next().then(() => woken++), changes.next().then(() => woken++)];
    await Promise.resolve();
    expect(woken).toBe(0);
    changes.notify();
    await Promise.all(waits);
    expect(woken).toBe(2);
  });
});

describe("MailingCache", () => {
  const state = (id: number, text = "hello"): MailingState => ({ id, text, window: null });

  test("holds a mailing only while one of its messages is held", async () => {
    const cache = new MailingCache(async (ids) => new Map(ids.map((id) => [id, state(id)])), () => {});
    cache.hold(1);
    cache.hold(1);
    cache.hold(2);
    await cache.refresh([1, 2]);
    expect(cache.size).toBe(2);
    cache.release(1);
    expect(cache.size).toBe(2);
    cache.release(1);
    cache.release(2);
    expect(cache.size).toBe(0);
  });

  test("a change of a mailing it holds nothing of reads nothing and caches nothing", async () => {
    let reads = 0;
    const cache = new MailingCache(async (ids) => (reads++, new Map(ids.map((id) => [id, state(id)]))), () => {});
    for (let id = 0; id < 10_000; id++) cache.changed(id);
    await Promise.resolve();
    expect(reads).toBe(0);
    expect(cache.size).toBe(0);
  });

  test("a failed re-read leaves the mailing unknown, and get() reads it again (never 'deleted')", async () => {
    let fail = false;
    const errors: number[][] = [];
    const cache = new MailingCache(
      async (ids) => {
        if (fail) throw new Error("connection refused");
        return new Map(ids.map((id) => [id, state(id, "new text")]));
      },
      (ids) => errors.push(ids),
    );
    cache.hold(7);
    await cache.refresh([7]);
    fail = true;
    cache.changed(7);
    await expect(cache.get(7)).rejects.toThrow("connection refused"); // unknown, not null
    expect(errors).toEqual([[7]]);
    fail = false;
    expect(await cache.get(7)).toEqual(state(7, "new text"));
  });

  test("changes signalled together are read in one query", async () => {
    const reads: number[][] = [];
    const cache = new MailingCache(async (ids) => (reads.push(ids), new Map(ids.map((id) => [id, state(id)]))), () => {});
    for (const id of [1, 2, 3]) cache.hold(id);
    for (const id of [1, 2, 3]) cache.changed(id);
    expect(await cache.get(3)).toEqual(state(3));
    expect(reads).toEqual([[1, 2, 3]]);
  });
});

describe("ClaimChecks", () => {
  test("a claim's own read is used while fresh; afterwards held messages are re-read together", async () => {
    const reads: number[][] = [];
    let wall = 1_000;
    const checks = new ClaimChecks(async (claims) => (reads.push(claims.map((c) => c.id)), new Map(claims.map((c) => [c.id, check]))), 50, () => wall);
    const messages = [claimed(1), claimed(2), claimed(3)];
    checks.hold(messages, wall, checks.readGeneration);
    expect(checks.peek(messages[0]!)).toEqual(check);
    expect(await checks.get(messages[0]!)).toEqual(check);
    expect(reads).toEqual([]);
    wall += 51; // older than maxAgeMs: the claim's read no longer counts
    expect(checks.peek(messages[0]!)).toBeUndefined();
    expect(await checks.get(messages[0]!)).toEqual(check);
    expect(reads).toEqual([[1, 2, 3]]);
    expect(await checks.get(messages[1]!)).toEqual(check); // covered by that same read
    expect(reads).toHaveLength(1);
  });

  test("changes signalled during every read (a stream of client PATCHes) do not starve a send: a read started after the ask answers it", async () => {
    let reads = 0;
    const checks: ClaimChecks = new ClaimChecks(async (claims) => {
      reads++;
      await Bun.sleep(1); // a query takes time, and meanwhile…
      checks.invalidate(); // …another change commits
      return new Map(claims.map((c) => [c.id, check]));
    }, 60_000);
    const message = claimed(1);
    checks.hold([message], Date.now(), checks.readGeneration);
    checks.invalidate();
    const answer = await Promise.race([checks.get(message), Bun.sleep(1000).then(() => "starved" as const)]);
    expect(answer).toEqual(check);
    expect(reads).toBe(1);
  });

  test("invalidate() (a mailing changed) makes every earlier read stale; a row not returned is no longer held", async () => {
    let answer = new Map<number, ClaimCheck>([[1, check]]);
    const checks = new ClaimChecks(async () => answer, 60_000);
    const message = claimed(1);
    checks.hold([message], Date.now(), checks.readGeneration);
    checks.invalidate();
    answer = new Map();
    expect(checks.peek(message)).toBeUndefined();
    expect(await checks.get(message)).toBeNull();
  });

  test("a failed read is reported to the message that needed it", async () => {
    const checks = new ClaimChecks(async () => {
      throw new Error("connection refused");
    }, 60_000);
    const message = claimed(1);
    checks.hold([message], Date.now(), checks.readGeneration - 1); // a read of an older generation
    await expect(checks.get(message)).rejects.toThrow("connection refused");
  });
});
