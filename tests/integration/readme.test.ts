/**
 * The README's API examples run top to bottom, as written, on an empty database: every `curl` in
 * the `sh` blocks of its "API" section (clients, mailings, statistics, tokens, compatibility
 * routes, operations) is parsed and sent through `app.handle()`, in order, and must succeed. So
 * the examples cannot drift from the API again (issue 10: they deleted client 1, then used it).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createApp } from "../../src/app";
import { FixedClock } from "../../src/clock";
import { silentSignals } from "../../src/dispatch/signals";
import { memoryLogger } from "../../src/ops/logger";
import { backends, freshDatabase, type TestDatabase } from "../support/db";

setDefaultTimeout(60_000);

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const readme = readFileSync(`${repoRoot}README.md`, "utf8");

/** The `sh` blocks between `## API` and `### Errors`. */
function apiBlocks(): string[] {
  const section = readme.slice(readme.indexOf("\n## API\n"), readme.indexOf("\n### Errors\n"));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * Splits a script into commands of words, as a POSIX shell would for what the README uses: single
 * and double quotes, `$NAME` expansion (not inside single quotes), backslash-newline continuations,
 * `#` comments. Nothing else (no pipes, no substitutions) is understood.
 */
function commands(script: string, vars: Record<string, string>): string[][] {
  const out: string[][] = [];
  let words: string[] = [];
  let word = "";
  let inWord = false;
  const endWord = () => {
    if (inWord) words.push(word);
    word = "";
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) out.push(words);
    words = [];
  };
  const variable = (from: number): [string, number] => {
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(script.slice(from))?.[0] ?? "";
    if (!name) return ["$", from];
    if (!(name in vars)) throw new Error(`README uses $${name}, which it does not set`);
    return [vars[name]!, from + name.length];
  };
  for (let i = 0; i < script.length; ) {
    const c = script[i]!;
    if (c === "\\" && script[i + 1] === "\n") i += 2;
    else if (c === "\\") {
      word += script[i + 1] ?? "";
      inWord = true;
      i += 2;
    } else if (c === " " || c === "\t") {
      endWord();
      i++;
    } else if (c === "\n") {
      endCommand();
      i++;
    } else if (c === "#" && !inWord) {
      while (i < script.length && script[i] !== "\n") i++;
    } else if (c === "'") {
      const close = script.indexOf("'", i + 1);
      word += script.slice(i + 1, close);
      inWord = true;
      i = close + 1;
    } else if (c === '"') {
      inWord = true;
      for (i++; script[i] !== '"'; ) {
        if (script[i] === "\\" && '"\\$'.includes(script[i + 1]!)) {
          word += script[i + 1];
          i += 2;
        } else if (script[i] === "$") {
          const [value, next] = variable(i + 1);
          word += value;
          i = next;
        } else word += script[i++];
      }
      i++;
    } else if (c === "$") {
      const [value, next] = variable(i + 1);
      word += value;
      inWord = true;
      i = next;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  endCommand();
  return out;
}

type Curl = { method: string; url: string; headers: Headers; body?: BodyInit; text: string };

/** The request a `curl` command line makes (the options the README uses). */
function curlRequest(args: string[]): Curl {
  let method: string | null = null;
  let url = "";
  const headers = new Headers();
  let body: BodyInit | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-X") method = args[++i]!;
    else if (arg === "-H") {
      const header = args[++i]!;
      const colon = header.indexOf(":");
      headers.append(header.slice(0, colon).trim(), header.slice(colon + 1).trim());
    } else if (arg === "-d" || arg === "--data-binary") {
      const data = args[++i]!;
      body = data.startsWith("@") ? readFileSync(`${repoRoot}${data.slice(1)}`) : data;
      // curl sends -d data as a form unless told otherwise
      if (!headers.has("content-type")) headers.set("content-type", "application/x-www-form-urlencoded");
    } else if (arg === "-o") i++; // where curl saves the answer: the test reads it instead
    else if (arg.startsWith("-")) throw new Error(`curl option ${arg} is not understood by this test`);
    else url = arg;
  }
  return { method: method ?? (body === undefined ? "GET" : "POST"), url, headers, body, text: `curl ${args.join(" ")}` };
}

for (const backend of backends()) {
  describe(`[${backend}] README: the API examples run top to bottom on an empty database`, () => {
    let db: TestDatabase;
    let app: Awaited<ReturnType<typeof createApp>>;
    const vars: Record<string, string> = {};
    const requests: Curl[] = [];

    beforeAll(async () => {
      for (const block of apiBlocks()) {
        for (const words of commands(block, vars)) {
          const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(words[0]!);
          if (words.length === 1 && assignment) vars[assignment[1]!] = assignment[2]!;
          else if (words[0] === "curl") requests.push(curlRequest(words.slice(1)));
          else throw new Error(`README command not understood by this test: ${words.join(" ")}`);
        }
      }
      const key = /Bearer (\S+)/.exec(vars.AUTH ?? "")?.[1];
      if (!key) throw new Error("README's AUTH holds no bearer key");
      db = await freshDatabase(backend);
      // The examples' dates (1 December 2026) are in the future as of this clock.
      app = await createApp({
        config: { adminApiKey: key },
        database: db.database,
        clock: new FixedClock("2026-11-30T00:00:00Z"),
        logger: memoryLogger(),
        signals: silentSignals,
      });
    });
    afterAll(() => db?.drop());

    test("every curl example succeeds, in order, as written", async () => {
      // clients, mailings, statistics, tokens, audit, compatibility routes, operations
      expect(requests.length).toBeGreaterThan(30);
      for (const r of requests.filter((q) => q.url.includes("/api/v1/")).map((q) => new URL(q.url).pathname.split("/")[3])) {
        expect(["clients", "mailings", "stats", "tokens", "audit", "blocklist"]).toContain(r!);
      }
      for (const curl of requests) {
        const init: RequestInit & { duplex?: string } = { method: curl.method, headers: curl.headers, body: curl.body };
        const response = await app.handle(new Request(curl.url, init));
        const text = await response.text();
        const expected = curl.method === "DELETE" ? [204] : curl.method === "POST" && /\/(clients|mailings|tokens|blocklist)\/?$|\/create\/?$/.test(new URL(curl.url).pathname) ? [201] : [200];
        expect(expected, `${curl.text}\n→ ${response.status} ${text.slice(0, 400)}`).toContain(response.status);
      }
    });
  });
}
