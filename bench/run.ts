/**
 * The benchmark suite of issue 4: `bun run bench` (full) and `bun run bench --quick` (a smoke run:
 * the same code paths at tiny sizes, no timing assertions; exits non-zero only when a path breaks).
 *
 * Runs every suite module in bench/ — a file that exports `run(options: { quick: boolean })` — one
 * after the other, dispatch-suite.ts (targets 1 and 3) first, the others in name order. Each suite
 * prints its own table; the exit code is non-zero if any suite threw or returned `{ ok: false }`.
 *
 *   bun run bench [--quick] [--only dispatch-suite,fanout] [suite flags, e.g. --n 50000 --rounds 1 --json out.json]
 *
 * Needs PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); every
 * bench creates its own database there and drops it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { machine } from "./dispatch-suite";

process.env.DATABASE_URL ||= "postgres://postgres@127.0.0.1:5432/postgres";

const here = fileURLToPath(new URL(".", import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const onlyIndex = argv.indexOf("--only");
const only = onlyIndex >= 0 ? new Set(argv[onlyIndex + 1]!.split(",").map((s) => s.replace(/\.ts$/, ""))) : null;

const suites = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .filter((f) => /export\s+async\s+function\s+run\s*\(/.test(readFileSync(`${here}${f}`, "utf8")))
  .map((f) => f.replace(/\.ts$/, ""))
  .sort((x, y) => (x === "dispatch-suite" ? -1 : y === "dispatch-suite" ? 1 : x.localeCompare(y)))
  .filter((name) => !only || only.has(name));

console.log(`# notification-service benchmarks (${quick ? "quick smoke run" : "full run"})`);
console.log(`machine: ${JSON.stringify(await machine())}`);
console.log(`suites: ${suites.join(", ")}`);

const failed: string[] = [];
const started = performance.now();
for (const name of suites) {
  const suiteStarted = performance.now();
  console.log(`\n# ${name}`);
  try {
    const module = (await import(`./${name}.ts`)) as { run(options: { quick: boolean; argv?: string[] }): Promise<unknown> };
    const result = (await module.run({ quick, argv })) as { ok?: unknown } | undefined;
    if (result && typeof result === "object" && result.ok === false) throw new Error(`${name} reported ok: false`);
  } catch (error) {
    failed.push(name);
    console.error(`suite ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
  console.log(`(${name}: ${((performance.now() - suiteStarted) / 1000).toFixed(1)} s)`);
}
console.log(`\n${suites.length - failed.length} passed, ${failed.length} failed (${((performance.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed.length > 0 ? 1 : 0);
