/** src/ops/http-cap.ts: when and how a worker replaces itself to lift Bun's 256 requests in flight. */
import { describe, expect, test } from "bun:test";
import { currentMaxHttpRequests, relaunchFor } from "../../src/ops/http-cap";

const bun = { execPath: "/usr/bin/bun", argv: ["/usr/bin/bun", "/app/src/main.ts", "--flag"], execArgv: ["--smol"] };

describe("relaunchFor", () => {
  test("within Bun's cap (256, or the variable's value): nothing to do", () => {
    expect(relaunchFor(100, {}, bun)).toBeNull();
    expect(relaunchFor(256, {}, bun)).toBeNull();
    expect(relaunchFor(2000, { BUN_CONFIG_MAX_HTTP_REQUESTS: "4096" }, bun)).toBeNull();
  });

  test("above it: the same command line (Bun's own flags included) with the variable set, once", () => {
    const plan = relaunchFor(2000, { HOME: "/root", BUN_CONFIG_MAX_HTTP_REQUESTS: "" }, bun)!;
    expect(plan.path).toBe("/usr/bin/bun");
    expect(plan.argv).toEqual(["/usr/bin/bun", "--smol", "/app/src/main.ts", "--flag"]);
    expect(plan.env.HOME).toBe("/root");
    expect(Number(plan.env.BUN_CONFIG_MAX_HTTP_REQUESTS)).toBeGreaterThanOrEqual(2000);
    expect(currentMaxHttpRequests(plan.env)).toBe(plan.maxHttpRequests);
    // The replacement never replaces itself again, whatever it finds.
    expect(relaunchFor(2000, { ...plan.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "10" }, bun)).toBeNull();
  });

  test("a compiled executable: its own path, without the virtual entry; Bun's upper bound kept", () => {
    const exe = { execPath: "/opt/notification-service", argv: ["bun", "/$bunfs/root/notification-service", "x"], execArgv: [] };
    const plan = relaunchFor(10_000, {}, exe)!;
    expect(plan.argv).toEqual(["/opt/notification-service", "x"]);
    expect(relaunchFor(70_000, {}, exe)!.maxHttpRequests).toBe(65_535);
  });
});
