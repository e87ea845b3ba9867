/**
 * The benchmark runner: `bun run bench` (full) and `bun run bench --quick` (a smoke run: the same
 * code paths at tiny sizes, no timing verdicts; exits non-zero only when a path breaks; .ci/run
 * runs it).
 *
 *   bun run bench [--quick] [--only dispatch,stats] [suite flags, e.g. --n 50000 --rounds 1 --json out.json]
 *
 * bench/ holds three kinds of file:
 *   suites/       what this runner runs: every top-level file of bench/suites/ is a suite (its
 *                 sub-folders, e.g. suites/dispatch/, hold the child processes and servers a suite
 *                 spawns, and are not discovered)
 *   experiments/  one-off studies kept for reproducibility, run by hand: `bun bench/experiments/x.ts`
 *   support/      the one shared module (`import { … } from "../support"`)
 *
 * The suite interface (adding a suite = adding one file to bench/suites/):
 *
 *   import { standalone, type SuiteOptions } from "../support";
 *   export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
 *     // options.quick: tiny sizes, no timing verdicts (verdict(quick, ok) prints "n/a (quick)");
 *     // options.argv: the whole command line, read suite flags with flag(options.argv, "name", default).
 *     // Print a table (printTable), return the figures; throw, or return { ok: false }, to fail.
 *   }
 *   if (import.meta.main) await standalone(run); // `bun bench/suites/<name>.ts [--quick] [flags]`
 *
 * Suites run one after the other, `dispatch` (issue 4, targets 1 and 3) first, the others in name
 * order; the exit code is non-zero if any suite threw or returned `{ ok: false }`.
 *
 * Needs PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); every
 * bench creates its own database there and drops it.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { machine, type SuiteOptions, type SuiteResult } from "./support";

process.env.DATABASE_URL ||= "postgres://postgres@127.0.0.1:5432/postgres";

const suitesDir = fileURLToPath(new URL("./suites/", import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const onlyIndex = argv.indexOf("--only");
const only = onlyIndex >= 0 ? new Set(argv[onlyIndex + 1]!.split(",").map((s) => s.replace(/\.ts$/, ""))) : null;

const first = "dispatch";
const suites = readdirSync(suitesDir, { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith(".ts"))
  .map((e) => e.name.replace(/\.ts$/, ""))
  .sort((x, y) => (x === first ? -1 : y === first ? 1 : x.localeCompare(y)))
  .filter((name) => !only || only.has(name));
if (only) for (const name of only) if (!suites.includes(name)) throw new Error(`--only: no suite bench/suites/${name}.ts`);

console.log(`# notification-service benchmarks (${quick ? "quick smoke run" : "full run"})`);
console.log(`machine: ${JSON.stringify(await machine())}`);
console.log(`suites: ${suites.join(", ")}`);

const failed: string[] = [];
const started = performance.now();
for (const name of suites) {
  const suiteStarted = performance.now();
  console.log(`\n# ${name}`);
  try {
    const module = (await import(`${suitesDir}${name}.ts`)) as { run?(options: SuiteOptions): Promise<SuiteResult> };
    if (typeof module.run !== "function") throw new Error(`bench/suites/${name}.ts does not export run(options)`);
    const result = await module.run({ quick, argv });
    if (result && typeof result === "object" && result.ok === false) throw new Error(`${name} reported ok: false`);
  } catch (error) {
    failed.push(name);
    console.error(`suite ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
  console.log(`(${name}: ${((performance.now() - suiteStarted) / 1000).toFixed(1)} s)`);
}
console.log(`\n${suites.length - failed.length} passed, ${failed.length} failed (${((performance.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed.length > 0 ? 1 : 0);
