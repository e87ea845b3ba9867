/**
 * End-to-end harness: the real server (`bun src/main.ts`) on 127.0.0.1 and a free port, on a fresh
 * PGlite directory or a fresh PostgreSQL database (DATABASE_URL), driven by Debian's Chromium
 * through playwright-core. Every page visited is checked for console errors.
 */
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { freshDatabase } from "../support/db";
import { freePort } from "../support/processes";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const haveChromium = existsSync(chromiumPath);
export const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** How long the server may take to answer /healthz. */
const startLimitMs = 150_000;

export type Server = { url: string; log: () => string; stop(): Promise<void> };

export async function startServer(backend: "pglite" | "postgres", env: Record<string, string> = {}): Promise<Server> {
  let dataDir: string | null = null;
  let drop: (() => Promise<void>) | null = null;
  const base: Record<string, string> = { ...(process.env as Record<string, string>), HOST: "127.0.0.1", LOG_LEVEL: "info", TICK: "* * * * * *" };
  delete base.DATABASE_URL;
  if (backend === "postgres") {
    const fresh = await freshDatabase("postgres");
    await fresh.database.close();
    base.DATABASE_URL = fresh.url!;
    drop = fresh.drop;
  } else {
    dataDir = mkdtempSync(join(tmpdir(), "nst-e2e-"));
    base.DATA_DIR = dataDir;
  }
  const port = freePort();
  let output = "";
  const child: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn([process.execPath, "src/main.ts"], {
    cwd: repoRoot,
    env: { ...base, PORT: String(port), ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += new TextDecoder().decode(chunk);
  };
  void collect(child.stdout);
  void collect(child.stderr);
  const url = `http://127.0.0.1:${port}`;
  // A fresh PGlite directory means initdb and every migration: over 60 s under a load of ~30 on two
  // cores (30 s was too short). Under the e2e files' 180 s hook limit, so a hang still fails here,
  // and a server that did not start is stopped and its data removed, not left running.
  const deadline = Date.now() + startLimitMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      await child.exited;
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      await drop?.();
      throw new Error(`the server did not answer /healthz within ${startLimitMs} ms (exit code ${child.exitCode}):\n${output}`);
    }
    await Bun.sleep(100);
  }
  return {
    url,
    log: () => output,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      await drop?.();
    },
  };
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}

/** A page that records console errors, page errors and dialogs (none may occur unasked). */
export async function watchedPage(context: BrowserContext) {
  const page = await context.newPage();
  const problems: string[] = [];
  const dialogs: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("dialog", async (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    // Confirmations the test expects are accepted; anything else (an alert) is recorded and closed.
    if (dialog.type() === "confirm") await dialog.accept();
    else await dialog.dismiss();
  });
  return { page, problems, dialogs };
}

const axeSource = await Bun.file(fileURLToPath(new URL("../../node_modules/axe-core/axe.min.js", import.meta.url))).text();

/** axe-core's serious and critical violations on the current page. */
export async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (an inline
  // <script> would be refused, as it should be).
  await page.evaluate(axeSource);
  const result = (await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")) as {
    violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  };
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** True when the page scrolls sideways at its current width. */
export async function scrollsSideways(page: Page): Promise<boolean> {
  return (await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")) as boolean;
}
