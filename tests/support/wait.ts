/** Waiting for an event in tests: a condition polled until a deadline, never a fixed sleep. */

/**
 * Polls until `check` returns a value other than undefined and returns it; throws, naming `what`,
 * once `timeoutMs` has passed.
 */
export async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(intervalMs);
  }
}
