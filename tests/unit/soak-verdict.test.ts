/** The soak's memory verdict (scripts/soak-verdict.ts): growth an operator would care about is called GREW. */
import { describe, expect, test } from "bun:test";
import { memoryVerdict, type MemoryPoint } from "../../scripts/soak-verdict";

/** A 30-minute run sampled every 15 s after a 3-minute warm-up; `rss(min)`, `heap(min)` in MB. */
function run(rss: (min: number) => number, heap: (min: number) => number = () => 18): MemoryPoint[] {
  return Array.from({ length: 108 }, (_, i) => {
    const min = 3 + i / 4;
    return { at: min * 60_000, rssGcMb: rss(min), heapMb: heap(min), objects: 111_000 };
  });
}
const grew = (points: MemoryPoint[]) => memoryVerdict(points).filter((v) => v.grew).map((v) => v.key);

describe("soak memory verdict", () => {
  test("flat memory, with the sample-to-sample jitter of a real run (±4 MB RSS), is flat", () => {
    expect(grew(run((min) => 122 + (Math.round(min * 4) % 2 === 0 ? 4 : -4)))).toEqual([]);
  });

  test("RSS after GC growing 3 MB per 10 minutes (18 MB an hour) is growth", () => {
    expect(grew(run((min) => 122 + 0.3 * min))).toEqual(["rssGcMb"]);
  });

  test("a JS heap growing 1 MB per 10 minutes is growth", () => {
    expect(grew(run(() => 122, (min) => 18 + 0.1 * min))).toEqual(["heapMb"]);
  });

  test("each line gives the change and the rate per 10 minutes", () => {
    const rss = memoryVerdict(run((min) => 122 + 0.3 * min)).find((v) => v.key === "rssGcMb")!;
    expect(rss.perTenMinutes).toBeCloseTo(3, 1);
  });
});
