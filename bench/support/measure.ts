/**
 * What the benchmarks measure besides wall time: RSS of a process, CPU split between this process,
 * the fake gateway and PostgreSQL, percentiles, the load average, and a semaphore for sends.
 */
import { readdirSync, readFileSync } from "node:fs";
import { round1 } from "./cli";

/** VmRSS of a process in MB (NaN once it is gone). Linux /proc. */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export type RssMonitor = {
  /** peak so far, MB */
  peak(): number;
  /** stops sampling; returns peak, last sample and sample count */
  stop(): { peakMb: number; lastMb: number; samples: number };
};

/** Samples a process's VmRSS (default: this one) every `everyMs` until stopped. */
export function rssMonitor(pid: number = process.pid, everyMs = 50): RssMonitor {
  let peak = 0;
  let last = NaN;
  let samples = 0;
  const sample = () => {
    const v = rssMb(pid);
    if (Number.isNaN(v)) return;
    last = v;
    samples++;
    if (v > peak) peak = v;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    peak: () => round1(peak),
    stop() {
      clearInterval(timer);
      sample();
      return { peakMb: round1(peak), lastMb: round1(last), samples };
    },
  };
}

/** The p-th percentile (nearest rank) of the values, in any order. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** The 1-minute load average when a bench starts (another job on a 2-core machine skews figures). */
export function loadAverage(): number {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** Runs at most `limit` of the given async jobs at once (a counting semaphore). */
export function limiter(limit: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    // A finishing job hands its slot straight to the next waiter, so `active` never exceeds `limit`.
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await job();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/**
 * CPU seconds used during a timed section, split by who used them: this process, the fake gateway
 * process (pid given) and PostgreSQL: the backends connected to `databaseName` (their command line
 * names the database; they live for the whole section because the pools keep their connections),
 * or every `postgres` process when no name is given. Server-wide processes (WAL writer,
 * checkpointer) and other sessions' databases are not counted. Linux /proc only; zeros elsewhere.
 */
export function cpuMeter(gatewayPid: number | null, databaseName: string | null = null): { stop(): { self: number; gateway: number; postgres: number; wallS: number } } {
  const tick = 100; // USER_HZ
  const read = (): Map<number, { comm: string; ticks: number }> => {
    const out = new Map<number, { comm: string; ticks: number }>();
    let entries: string[] = [];
    try {
      entries = readdirSync("/proc");
    } catch {
      return out;
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const comm = stat.slice(stat.indexOf("(") + 1, close);
        const fields = stat.slice(close + 2).split(" ");
        out.set(Number(entry), { comm, ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // the process ended meanwhile
      }
    }
    return out;
  };
  const before = read();
  const started = performance.now();
  return {
    stop() {
      const after = read();
      const delta = (pid: number) => ((after.get(pid)?.ticks ?? 0) - (before.get(pid)?.ticks ?? 0)) / tick;
      let postgresTicks = 0;
      for (const [pid, p] of after) {
        if (p.comm !== "postgres") continue;
        if (databaseName) {
          let cmdline = "";
          try {
            cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
          } catch {
            continue;
          }
          if (!cmdline.includes(` ${databaseName} `)) continue;
        }
        postgresTicks += delta(pid);
      }
      const round = (x: number) => Math.round(x * 100) / 100;
      return {
        self: round(delta(process.pid)),
        gateway: gatewayPid ? round(delta(gatewayPid)) : 0,
        postgres: round(postgresTicks),
        wallS: round((performance.now() - started) / 1000),
      };
    },
  };
}
