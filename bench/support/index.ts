/**
 * The one support module of the benchmarks (bench/suites, bench/experiments import from here):
 *
 *   cli.ts       the suite interface (SuiteOptions, standalone), flags, checks, printed tables,
 *                the BENCH_RESULT protocol of bench child processes, the machine description
 *   db.ts        a fresh PostgreSQL database per bench, small set-based seeds
 *   fill.ts      the 10M-row tables of the statistics, metrics and pages suites
 *   processes.ts the service, the fake gateway and plain servers as processes; wrk
 *   measure.ts   RSS, CPU split by process, percentiles, load average, a semaphore
 */
export * from "./cli";
export * from "./db";
export * from "./fill";
export * from "./measure";
export * from "./processes";
