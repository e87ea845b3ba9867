/**
 * The soak's memory verdict (scripts/soak.ts), on its own so a unit test can feed it made-up runs.
 *
 * A relative rule alone ("the last third within 10 % of the first") hides a slow leak behind a big
 * base: on 122 MB of RSS after GC, 10 % is 12 MB, and a leak of 3 MB per 10 minutes (18 MB an hour,
 * 430 MB a day) passed a 30-minute run as flat. So each figure also gets its growth rate, the
 * least-squares slope over all the samples after the warm-up, in MB (or objects) per 10 minutes, and
 * is called GREW when that rate is above a limit: 1.5 MB per 10 minutes for the RSS after GC (about 3
 * standard errors of the slope for the ±4 MB the RSS jumps between samples in a 30-minute run with
 * 15 s samples), 0.5 MB per 10 minutes for the JS heap (its jitter is a tenth of that).
 */
export type MemoryPoint = { at: number; heapMb: number; rssGcMb: number; objects: number };
export type MemoryLine = { key: "heapMb" | "objects" | "rssGcMb"; first: number; last: number; perTenMinutes: number; grew: boolean };

/** Growth rate limits, per 10 minutes. */
export const growthLimits = { heapMb: 0.5, rssGcMb: 1.5, objects: Infinity } as const;

/** Least-squares slope of `k` against time, per 10 minutes. */
function slopePerTenMinutes(body: MemoryPoint[], k: MemoryLine["key"]): number {
  if (body.length < 2) return NaN;
  const t = body.map((s) => s.at / 600_000);
  const y = body.map((s) => s[k]);
  const mt = t.reduce((a, b) => a + b, 0) / t.length;
  const my = y.reduce((a, b) => a + b, 0) / y.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < t.length; i++) {
    num += (t[i]! - mt) * (y[i]! - my);
    den += (t[i]! - mt) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

/** Flat: the last third's average within 10 % of the first's, and the growth rate under its limit. */
export function memoryVerdict(body: MemoryPoint[]): MemoryLine[] {
  const third = Math.max(1, Math.floor(body.length / 3));
  const avg = (xs: MemoryPoint[], k: MemoryLine["key"]) => xs.reduce((a, s) => a + s[k], 0) / xs.length;
  return (["heapMb", "objects", "rssGcMb"] as const).map((key) => {
    const first = avg(body.slice(0, third), key);
    const last = avg(body.slice(-third), key);
    const perTenMinutes = slopePerTenMinutes(body, key);
    return { key, first, last, perTenMinutes, grew: last > first * 1.1 || perTenMinutes > growthLimits[key] };
  });
}
