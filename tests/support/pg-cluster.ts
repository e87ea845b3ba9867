/**
 * A PostgreSQL cluster of the test's own, made with initdb and driven with pg_ctl, for tests that stop
 * the database on purpose (issue 14 item 2). Never the machine's shared server on 5432: a spare port
 * below 32768 (outside the ephemeral range, so an outgoing connection cannot hold it), 127.0.0.1 only,
 * trust authentication, data in a temporary directory removed by `destroy()`.
 *
 * PostgreSQL refuses to run as root: when the tests run as root, the binaries run as `postgres`.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The newest installed PostgreSQL's bin directory, or null when there is none (the test then skips). */
export function postgresBin(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
  return null;
}

export type Cluster = {
  port: number;
  url: string;
  /** the URL of another database on this cluster */
  urlOf(database: string): string;
  start(): Promise<void>;
  /** `fast` ends the sessions and stops; `immediate` is a crash (recovery at the next start) */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  psql(sqlText: string, database?: string): Promise<string>;
  destroy(): Promise<void>;
  /** destroy() for an "exit" handler, where nothing async runs (the soak on Ctrl-C or a crash); idempotent */
  destroySync(): void;
};

const asRoot = process.getuid?.() === 0;

async function run(argv: string[], what: string): Promise<string> {
  const cmd = asRoot ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const child = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`${what} failed (${code}): ${err || out}`);
  return out;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

/** A port between 20000 and 32767 nothing listens on (checked; pg_ctl start fails loudly if raced). */
async function sparePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 12_000);
    if (await portFree(port)) return port;
  }
  throw new Error("no spare port below 32768");
}

/** Makes and starts a cluster; `settings` go into postgresql.conf (max_connections, …). */
export async function makeCluster(bin: string, settings: Record<string, string | number> = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "notif-pgcluster-"));
  if (asRoot) chownSync(dir, 101, 104);
  const data = join(dir, "data");
  await run([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"], "initdb");
  const port = await sparePort();
  const conf = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${dir}'`,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    max_connections: 100,
    shared_buffers: "'32MB'",
    ...settings,
  };
  writeFileSync(
    join(data, "postgresql.auto.conf"),
    Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
  );
  if (asRoot) chownSync(join(data, "postgresql.auto.conf"), 101, 104);
  const log = join(dir, "server.log");
  const cluster: Cluster = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    urlOf: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      await run([join(bin, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "60", "start"], "pg_ctl start");
    },
    async stop(mode = "fast") {
      await run([join(bin, "pg_ctl"), "-D", data, "-m", mode, "-w", "-t", "60", "stop"], "pg_ctl stop");
    },
    psql(sqlText, database = "postgres") {
      return run([join(bin, "psql"), "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-Atqc", sqlText], "psql");
    },
    async destroy() {
      await cluster.stop("immediate").catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
    destroySync() {
      if (!existsSync(data)) return;
      const argv = [join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "-t", "60", "stop"];
      Bun.spawnSync(asRoot ? ["runuser", "-u", "postgres", "--", ...argv] : argv, { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.start();
  return cluster;
}

/**
 * The server a soak runs against (scripts/soak.ts, scripts/soak-bisect.ts): SOAK_DATABASE_URL if
 * set; otherwise a cluster of its own with PostgreSQL's defaults for what matters there (autovacuum
 * on, one-minute naptime, 20 % scale factor), removed when the process exits however it ends
 * (pg_ctl puts the server in a session of its own, so a Ctrl-C never reaches it); without server
 * binaries, DATABASE_URL or the local server.
 */
export async function soakServer(): Promise<{ url: string; cluster: Cluster | null }> {
  if (process.env.SOAK_DATABASE_URL) return { url: process.env.SOAK_DATABASE_URL, cluster: null };
  const bin = postgresBin();
  if (!bin) return { url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres", cluster: null };
  const cluster = await makeCluster(bin, { autovacuum: "on", shared_buffers: "'128MB'" });
  process.on("exit", () => cluster.destroySync());
  return { url: cluster.url, cluster };
}
