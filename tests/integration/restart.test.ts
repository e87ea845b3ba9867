import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../support/wait";

import { setDefaultTimeout } from "bun:test";

// Integration tests start databases, gateways and processes on a shared 2-core machine. Bun resets
// the per-test timeout (5 s) for every file, so each file sets its own.
setDefaultTimeout(60_000);

/**
 * §2 "two commands": the real server process on embedded PGlite keeps its data in DATA_DIR across
 * a restart, applies migrations on the first start and nothing on the second, and refuses a second
 * process on the same directory.
 */
const dataDir = mkdtempSync(join(tmpdir(), "nst-restart-"));
const key = "restart-test-admin-key";
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = probe.port!;
  await probe.stop(true);
  return port;
}

async function start() {
  const port = await freePort();
  const proc = Bun.spawn(["bun", "src/main.ts"], {
    env: { ...process.env, DATABASE_URL: "", DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", ADMIN_API_KEY: key, TICK: "* * * * * *" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: Record<string, unknown>[] = [];
  const reader = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      buffer += decoder.decode(chunk);
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          lines.push(JSON.parse(line));
        } catch {}
      }
    }
  })();
  const url = `http://127.0.0.1:${port}`;
  // Ready, or exited (a second process on the directory must refuse to start).
  await waitFor(
    async () => (proc.exitCode !== null || proc.signalCode !== null || (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) ? true : undefined),
    30_000,
    "the server to answer /readyz or exit",
    50,
  );
  return { proc, url, lines, reader };
}

describe("§2 embedded database across restarts", () => {
  test("data survives a restart; the second start applies no migration; one process per DATA_DIR", async () => {
    const first = await start();
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    const created = await fetch(`${first.url}/api/v1/clients`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ phone_number: "+7 (910) 145-90-28", timezone: "Europe/Moscow" }),
    }).then((r) => r.json());
    expect(created.phone_number).toBe("79101459028");

    // A second process on the same directory refuses to start, naming the reason.
    const intruder = await start();
    expect(await intruder.proc.exited).not.toBe(0);
    await intruder.reader;
    expect(intruder.lines.some((l) => String((l.error as { message?: string } | undefined)?.message).includes("in use by process"))).toBe(true);

    first.proc.kill("SIGTERM");
    expect(await first.proc.exited).toBe(0);
    await first.reader;
    const firstReady = first.lines.find((l) => l.msg === "database ready");
    // A new DATA_DIR is created from the shipped image, already migrated (src/db/embedded-image.ts).
    expect(firstReady).toMatchObject({ driver: "pglite", created: "image", migrations_applied: 0 });

    const second = await start();
    const got = await fetch(`${second.url}/api/v1/clients/${created.id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(got.status).toBe(200);
    expect((await got.json()).phone_number).toBe("79101459028");
    second.proc.kill("SIGTERM");
    expect(await second.proc.exited).toBe(0);
    await second.reader;
    const secondReady = second.lines.find((l) => l.msg === "database ready");
    expect(secondReady).toMatchObject({ migrations_applied: 0 });
    expect(secondReady!.created).toBeUndefined();
  });
});
