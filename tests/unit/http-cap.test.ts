/** src/ops/http-cap.ts: when and how a worker replaces itself to lift Bun's 256 requests in flight. */
import { describe, expect, test } from "bun:test";
import { currentMaxHttpRequests, relaunchFor } from "../../src/ops/http-cap";
import { embeddedGcBudgetBytes, embeddedJscSettings } from "../../src/ops/memory";

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

  test("start-up settings (the embedded JSC budget): a replacement that sets the missing ones, the operator's kept", () => {
    const settings = { BUN_JSC_gcMaxHeapSize: "33554432" };
    const plan = relaunchFor(0, { HOME: "/root" }, bun, settings)!;
    expect(plan.argv).toEqual(["/usr/bin/bun", "--smol", "/app/src/main.ts", "--flag"]);
    expect(plan.env.BUN_JSC_gcMaxHeapSize).toBe("33554432");
    expect(plan.set).toEqual(settings);
    // The cap is left alone when it is not needed, raised in the same replacement when it is.
    expect(plan.env.BUN_CONFIG_MAX_HTTP_REQUESTS).toBeUndefined();
    expect(plan.maxHttpRequests).toBe(256);
    const both = relaunchFor(2000, {}, bun, settings)!;
    expect(Object.keys(both.set).sort()).toEqual(["BUN_CONFIG_MAX_HTTP_REQUESTS", "BUN_JSC_gcMaxHeapSize"]);
    // Set already (by the operator, whatever the value): nothing to replace.
    expect(relaunchFor(0, { BUN_JSC_gcMaxHeapSize: "33554432" }, bun, settings)).toBeNull();
    expect(relaunchFor(2000, { BUN_JSC_gcMaxHeapSize: "1" }, bun, settings)!.set).toEqual({ BUN_CONFIG_MAX_HTTP_REQUESTS: both.set.BUN_CONFIG_MAX_HTTP_REQUESTS! });
    // The replacement never replaces itself again.
    expect(relaunchFor(0, { ...plan.env, BUN_JSC_gcMaxHeapSize: undefined }, bun, settings)).toBeNull();
  });

  test("a setting from .env (in process.env, not in the environment Bun started with, which alone JSC reads): applied by the replacement", () => {
    const settings = { BUN_JSC_gcMaxHeapSize: "33554432" };
    // The operator's value in .env: Bun merged it into process.env after JSC had read its options.
    const fromDotEnv = relaunchFor(0, { HOME: "/root", BUN_JSC_gcMaxHeapSize: "67108864" }, bun, settings, { HOME: "/root" })!;
    expect(fromDotEnv).not.toBeNull();
    expect(fromDotEnv.env.BUN_JSC_gcMaxHeapSize).toBe("67108864");
    // Set in the environment the process started with: JSC has it, nothing to replace.
    expect(relaunchFor(0, { BUN_JSC_gcMaxHeapSize: "67108864" }, bun, settings, { BUN_JSC_gcMaxHeapSize: "67108864" })).toBeNull();
  });
});

describe("embeddedJscSettings", () => {
  test("the embedded database (no DATABASE_URL) fixes JSC's collection budget; PostgreSQL keeps Bun's defaults", () => {
    expect(embeddedJscSettings(null)).toEqual({ BUN_JSC_gcMaxHeapSize: String(embeddedGcBudgetBytes) });
    expect(embeddedJscSettings("postgres://127.0.0.1/x")).toEqual({});
  });

  test("this Bun accepts the settings (it refuses to start on a BUN_JSC_ option it does not know)", () => {
    const run = Bun.spawnSync([process.execPath, "-e", "process.exit(0)"], { env: { ...process.env, ...embeddedJscSettings(null) }, stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(run.exitCode).toBe(0);
    // …and would refuse a mistyped one: the check above can fail.
    const wrong = Bun.spawnSync([process.execPath, "-e", "process.exit(0)"], { env: { ...process.env, BUN_JSC_gcMaxHeapSise: "1" }, stderr: "pipe" });
    expect(wrong.exitCode).not.toBe(0);
  });
});
