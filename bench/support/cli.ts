/**
 * The suite interface, flags, checks and printed tables of the benchmarks.
 *
 * A suite (bench/suites/<name>.ts) exports `run(options: SuiteOptions): Promise<SuiteResult>`;
 * bench/run.ts calls it, and `if (import.meta.main) await standalone(run)` lets it run alone.
 * A bench child process (bench/suites/dispatch/*.ts, most experiments) wraps its body in `main()`,
 * which prints one `BENCH_RESULT {json}` line for its parent.
 */
import { cpus, loadavg, totalmem } from "node:os";
import postgres from "postgres";

/** What bench/run.ts hands every suite: `quick` (tiny sizes, no timing verdicts) and the command line. */
export type SuiteOptions = { quick: boolean; argv: string[] };
/** What a suite returns: its figures; `ok: false` (or a throw) fails the run. */
export type SuiteResult = Record<string, unknown> & { ok?: boolean };

/** Runs a suite from its own command line (`bun bench/suites/x.ts [--quick] [flags]`) and exits. */
export async function standalone(run: (options: SuiteOptions) => Promise<SuiteResult>): Promise<never> {
  const argv = process.argv.slice(2);
  try {
    const result = await run({ quick: argv.includes("--quick"), argv });
    process.exit(result.ok === false ? 1 : 0);
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  }
}

/** `--name value` from `argv` (the last one wins, so a caller can override a default). */
export function arg(name: string, fallback: string, argv: string[] = process.argv.slice(2)): string {
  const i = argv.lastIndexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

/** A numeric `--name value` from `argv`. */
export function flag(argv: string[], name: string, fallback: number): number {
  return Number(arg(name, String(fallback), argv));
}

/** A child prints a line starting with this marker for every database it creates. */
export const databaseMarker = "BENCH_DB ";

/** A child prints exactly one line starting with this marker: its result as JSON. */
export const resultMarker = "BENCH_RESULT ";

export function report(result: Record<string, unknown>): void {
  process.stdout.write(resultMarker + JSON.stringify(result) + "\n");
}

/** A bench child's main: runs `body`, reports errors as `{ok:false}` and sets the exit code. */
export async function main(body: () => Promise<Record<string, unknown>>): Promise<void> {
  try {
    const result = await body();
    report({ ok: true, ...result });
    process.exit(0);
  } catch (error) {
    report({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  }
}

/** Fails the bench (also under --quick) when a functional check does not hold. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** `pass`/`MISS` for a figure against a bound; `n/a` in quick mode (no timing assertions). */
export function verdict(quick: boolean, ok: boolean): string {
  return quick ? "n/a (quick)" : ok ? "pass" : "MISS";
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round2 = (x: number) => Math.round(x * 100) / 100;

export type Row = { figure: string; value: string | number; target?: string; verdict?: string };

/** Prints a titled, aligned table of figures. */
export function printTable(title: string, rows: Row[]): void {
  const header = { figure: "figure", value: "value", target: "target", verdict: "verdict" };
  const all = [header, ...rows.map((r) => ({ figure: r.figure, value: String(r.value), target: r.target ?? "", verdict: r.verdict ?? "" }))];
  const w = (k: keyof typeof header) => Math.max(...all.map((r) => r[k].length));
  const line = (r: typeof header) =>
    `| ${r.figure.padEnd(w("figure"))} | ${r.value.padStart(w("value"))} | ${r.target.padEnd(w("target"))} | ${r.verdict.padEnd(w("verdict"))} |`;
  const sep = `|${"-".repeat(w("figure") + 2)}|${"-".repeat(w("value") + 2)}|${"-".repeat(w("target") + 2)}|${"-".repeat(w("verdict") + 2)}|`;
  console.log(`\n## ${title}\n`);
  console.log(line(header));
  console.log(sep);
  for (const r of all.slice(1)) console.log(line(r));
  console.log("");
}

/** The machine a run is on (printed at the top of every run and kept with the dispatch figures). */
export async function machine(): Promise<Record<string, unknown>> {
  let postgresVersion = "unknown";
  const admin = postgres(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres", { max: 1, onnotice: () => {} });
  try {
    const [row] = await admin<{ v: string }[]>`select version() as v`;
    postgresVersion = row!.v.split(" on ")[0]!;
  } catch (error) {
    postgresVersion = `unreachable: ${String(error)}`;
  } finally {
    await admin.end({ timeout: 5 });
  }
  return {
    date: new Date().toISOString(),
    nproc: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    postgres: postgresVersion,
    bun: Bun.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
