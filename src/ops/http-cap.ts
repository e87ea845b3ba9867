/**
 * Bun's `fetch` keeps at most 256 requests in flight per process; the others wait inside `fetch`
 * unless BUN_CONFIG_MAX_HTTP_REQUESTS is set when the process starts. Setting it later, even before
 * the first `fetch`, changes nothing (measured: 1,000 requests, 1,000 at once, against a gateway
 * answering in 2 s took 8.2 s as set at run time and 2.7 s as set before the start). So a process
 * whose GATEWAY_CONCURRENCY asks for more replaces itself once, at start-up, with the variable set:
 * `execve` of the same command line, so the pid, stdio and signal handling stay the same (no
 * supervisor process that a SIGKILL would orphan its child from). A user who sets
 * SEND_CONCURRENCY=2000 gets 2,000 requests in flight without knowing Bun's variable.
 */

import { readFileSync } from "node:fs";

/** Bun's own cap when BUN_CONFIG_MAX_HTTP_REQUESTS is unset. */
export const bunDefaultMaxHttpRequests = 256;
/** Bun refuses larger values (and exits). */
const bunLargestMaxHttpRequests = 65_535;
/** requests beyond the gateway's: webhooks, OAuth sign-ins, a test send from the UI */
const spareRequests = 32;
const variable = "BUN_CONFIG_MAX_HTTP_REQUESTS";
/** set in the replacing process, so that it never replaces itself again */
const marker = "NOTIFICATION_SERVICE_RELAUNCHED";

type Env = Record<string, string | undefined>;

export type Relaunch = {
  path: string;
  argv: string[];
  env: Record<string, string>;
  /** the cap in the replacing process */
  maxHttpRequests: number;
  /** the variables the replacement sets (BUN_CONFIG_MAX_HTTP_REQUESTS and/or `settings`) */
  set: Record<string, string>;
};

/** The cap Bun applies in this process, as its environment says. */
export function currentMaxHttpRequests(env: Env): number {
  const value = Number(env[variable]);
  return Number.isInteger(value) && value >= 1 ? value : bunDefaultMaxHttpRequests;
}

/**
 * What to run instead of this process so that `gatewayRequests` requests can be in flight at once
 * and every variable of `settings` (variables Bun reads only at start, such as JSC's BUN_JSC_*
 * options: ops/memory.ts) is set; a setting already in `env` is the operator's and is kept. Null
 * when nothing is missing (or this process is such a replacement). `startEnv`: the environment the
 * process was started with (`env` without what Bun loaded from .env files; startEnvironment()).
 */
export function relaunchFor(
  gatewayRequests: number,
  env: Env,
  process: { execPath: string; argv: string[]; execArgv: string[] },
  settings: Record<string, string> = {},
  startEnv: Env = env,
): Relaunch | null {
  if (env[marker]) return null;
  const set: Record<string, string> = {};
  const needed = Math.min(bunLargestMaxHttpRequests, gatewayRequests + spareRequests);
  if (gatewayRequests > currentMaxHttpRequests(env)) set[variable] = String(needed);
  // JSC reads its options before Bun loads .env: one only in .env (in `env`, not in `startEnv`) is
  // the operator's value, applied by the replacement.
  for (const [key, value] of Object.entries(settings)) if (startEnv[key] === undefined) set[key] = env[key] ?? value;
  if (Object.keys(set).length === 0) return null;
  // A compiled executable's argv[1] is its own entry in Bun's virtual file system: not an argument.
  const script = process.argv[1] ?? "";
  const compiled = script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/");
  const args = compiled ? process.argv.slice(2) : [...process.execArgv, ...process.argv.slice(1)];
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) childEnv[key] = value;
  Object.assign(childEnv, set);
  childEnv[marker] = "1";
  return { path: process.execPath, argv: [process.execPath, ...args], env: childEnv, maxHttpRequests: currentMaxHttpRequests(childEnv), set };
}

/**
 * Replaces this process with `plan` (`execve`); returns only if that failed, with the reason (no
 * libc reachable through bun:ffi, an exec error). The caller then goes on with Bun's cap.
 */
export async function relaunch(plan: Relaunch): Promise<string> {
  try {
    const { dlopen, FFIType, ptr } = await import("bun:ffi");
    const names = process.platform === "darwin" ? ["libc.dylib"] : ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];
    type Libc = { symbols: { execve: (path: number, argv: number, envp: number) => number } };
    let lastError: unknown = null;
    const open = (name: string): Libc | null => {
      try {
        return dlopen(name, { execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } }) as unknown as Libc;
      } catch (error) {
        lastError = error;
        return null;
      }
    };
    const libc = names.map(open).find((l) => l !== null) ?? null;
    if (!libc) return `no libc to call execve (${String(lastError)})`;
    const keep: Buffer[] = [];
    const cString = (text: string) => {
      const buffer = Buffer.from(`${text}\0`, "utf8");
      keep.push(buffer);
      return buffer;
    };
    const pointers = (items: string[]) => {
      const array = new BigUint64Array(items.length + 1); // NULL-terminated
      items.forEach((item, i) => (array[i] = BigInt(ptr(cString(item)))));
      return array;
    };
    const argv = pointers(plan.argv);
    const envp = pointers(Object.entries(plan.env).map(([key, value]) => `${key}=${value}`));
    const rc = libc.symbols.execve(ptr(cString(plan.path)), ptr(argv), ptr(envp));
    keep.length = 0;
    return `execve returned ${rc}`;
  } catch (error) {
    return String(error);
  }
}

/**
 * The environment this process was started with, without what Bun added from .env files (Linux:
 * /proc/self/environ); elsewhere `env` itself.
 */
export function startEnvironment(env: Env): Env {
  try {
    const start: Env = {};
    for (const entry of readFileSync("/proc/self/environ", "utf8").split("\0")) {
      const at = entry.indexOf("=");
      if (at > 0) start[entry.slice(0, at)] = entry.slice(at + 1);
    }
    return start;
  } catch {
    return env;
  }
}
