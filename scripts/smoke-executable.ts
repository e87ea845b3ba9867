/**
 * The compiled executable, end to end (issue 13, item 4; run by .ci/run after `bun run build`):
 * dist/notification-service starts in an empty directory with no configuration but ADMIN_API_KEY
 * (and PORT, since the machine is shared), on the embedded database; a client and a due mailing are
 * created over the API; the message is sent through the sandbox gateway; SIGTERM stops it with
 * exit code 0 within LEASE_SECONDS (60 s by default). Exits non-zero when any step fails.
 *
 *   bun scripts/smoke-executable.ts [path to the executable]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const executable = resolve(process.argv[2] ?? "dist/notification-service");
const adminKey = "smoke-admin-key-0123456789abcdef";

function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(200);
  }
}

const wall = (offsetHours: number) => new Date(Date.now() + offsetHours * 3_600_000).toISOString().slice(0, 19);

const dir = mkdtempSync(join(tmpdir(), "nst-exe-"));
const port = freePort();
const base = `http://127.0.0.1:${port}`;
const started = performance.now();
// A clean environment: no DATABASE_URL (the CI exports one), HOME inside the empty directory.
const child = Bun.spawn([executable], {
  cwd: dir,
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ADMIN_API_KEY: adminKey, PORT: String(port) },
  stdout: "pipe",
  stderr: "pipe",
});
const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
const api = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as any };
};

let ok = false;
try {
  await until("/readyz", 180_000, async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
  const readyS = (performance.now() - started) / 1000;
  const client = await api("POST", "/api/v1/clients", { phone_number: "79001234567", timezone: "UTC" });
  if (client.status !== 201) throw new Error(`creating a client answered ${client.status}: ${JSON.stringify(client.body)}`);
  const mailing = await api("POST", "/api/v1/mailings", { text: "smoke", start_time: wall(-1), end_time: wall(1), tags_filter: [], codes_filter: [] });
  if (mailing.status !== 201) throw new Error(`creating a mailing answered ${mailing.status}: ${JSON.stringify(mailing.body)}`);
  await until("the message to be sent", 30_000, async () => {
    const stats = await api("GET", `/api/v1/stats/${mailing.body.id}`);
    return stats.body.by_status?.sent === 1 ? true : undefined;
  });
  const stopAt = performance.now();
  child.kill("SIGTERM");
  const code = await Promise.race([child.exited, Bun.sleep(60_000).then(() => "timeout" as const)]);
  const stopS = (performance.now() - stopAt) / 1000;
  if (code !== 0) throw new Error(`SIGTERM: exit ${code} after ${stopS.toFixed(1)} s`);
  // A single SIGTERM must take the graceful path, not the second-signal one (exit 0 there was luck).
  if ((await output)[0].includes("second signal")) throw new Error("one SIGTERM was handled as a second signal");
  console.log(`executable smoke: ok (ready in ${readyS.toFixed(1)} s on an empty data directory, message sent, SIGTERM → exit 0 in ${stopS.toFixed(2)} s)`);
  ok = true;
} catch (error) {
  console.error(`executable smoke: FAILED: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  if (child.exitCode === null) child.kill("SIGKILL");
  await child.exited;
  if (!ok) {
    const [stdout, stderr] = await output;
    console.error(`--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`);
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
