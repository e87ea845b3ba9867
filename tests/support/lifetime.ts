/**
 * What a test opened lives no longer than the test. Bun cannot stop a test that timed out: its body
 * runs on in the background while the next test starts. Test files keep their app in a variable
 * shared by all tests of a block (`let e: TestEngine; afterEach(() => e?.close())`), so a body that
 * timed out during its set-up (say, while the first test of a loaded run built the PGlite template)
 * finished that set-up during the next test, overwrote the variable and went on writing into the next
 * test's database ("a client with phone number … already exists"), and one of the two apps was never
 * closed. Here:
 *
 * - the preload (setup.ts) marks each test's start and end;
 * - an app made during a test (`adopt`) that is ready only after its test ended is closed at once and
 *   its set-up fails, so the stale body stops before it touches anything of the next test;
 * - whatever a test opened and did not close (its afterEach found the variable empty) is closed when
 *   the test ends;
 * - `alive` tells whether the test that made something is still running (the test app refuses
 *   requests after that).
 *
 * Something made outside a test (in a beforeAll) belongs to its file's afterAll and is not tracked.
 */

export type Owner = { ended: boolean; open: Set<() => Promise<void>> };

let current: Owner | null = null;

/** Called before each test (setup.ts). */
export function beginTest(): void {
  current = { ended: false, open: new Set() };
}

/** Called after each test and its own afterEach hooks (setup.ts): closes what the test left open. */
export async function endTest(): Promise<void> {
  const owner = current;
  current = null;
  if (!owner) return;
  owner.ended = true;
  const errors: unknown[] = [];
  // Newest first: an engine stops its dispatcher before its app closes and its database goes back.
  for (const close of [...owner.open].reverse()) await close().catch((error) => errors.push(error));
  owner.open.clear();
  if (errors.length > 0) throw new AggregateError(errors, "closing what the test left open");
}

/** The running test, or null outside a test (a beforeAll, an afterAll). */
export function currentOwner(): Owner | null {
  return current;
}

/**
 * Hands something made for `owner` (from `currentOwner()` taken before its set-up began) to the
 * test: registered to be closed when the test ends, or, if the test has already ended (it timed out
 * during the set-up), closed now and an error thrown instead.
 */
export async function adopt(owner: Owner | null, close: () => Promise<void>): Promise<() => Promise<void>> {
  const once = onlyOnce(async () => {
    owner?.open.delete(once);
    await close();
  });
  if (!owner) return once;
  if (owner.ended) {
    await once();
    throw new Error("the test ended (timed out?) before its set-up was ready; what the set-up made is closed again");
  }
  owner.open.add(once);
  return once;
}

/** Whether `owner`'s test is still running (always true outside a test). */
export function alive(owner: Owner | null): boolean {
  return !owner?.ended;
}

function onlyOnce(action: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= action());
}
