/**
 * Structured JSON logs, one object per line on stdout, written by pino through an asynchronous
 * destination (a send no longer waits for its log line to reach the pipe). Every line about a
 * message carries `mailing_id`, `message_id` and `client_id` (SPEC §10), best through a child
 * logger that binds them once. Secrets are never passed in, and errors are reduced to what helps
 * (type, message, code, stack, cause) by `describeError`, which never keeps a statement's SQL text
 * or its parameters.
 */
import { DrizzleQueryError } from "drizzle-orm";
import pino from "pino";

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  enabled(level: Level): boolean;
  /** A logger whose every line also carries `bindings` (such as `mailing_id`). */
  child(bindings: Fields): Logger;
}

/** The process's logger: also flushes what the asynchronous destination still holds. */
export type RootLogger = Logger & { flush(): Promise<void> };

/**
 * A failed statement reaches us as Drizzle's DrizzleQueryError, whose message, stack and fields
 * hold the SQL text and every parameter (a token's SHA-256, a phone number). What explains the
 * failure is its cause: the driver's error with the SQLSTATE (`23505`) or the network code
 * (`ECONNREFUSED`).
 */
function isQueryError(error: Error): boolean {
  return error instanceof DrizzleQueryError || queryText.test(error.message);
}

const queryText = /^(?:\w*Error: )?Failed query: [\s\S]*$/;

/** The parts of an error worth a log line, without SQL text or parameters; causes followed 3 deep. */
export function describeError(error: unknown, depth = 0): Fields {
  if (!(error instanceof Error)) return { message: redact(String(error)) };
  const query = isQueryError(error);
  const message = query ? "a database statement failed" : redact(error.message);
  const frames = (error.stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  const out: Fields = { type: error.name, message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") out.code = code;
  // postgres.js names the constraint or table; its `detail` can quote row values, so it stays out.
  const constraint = (error as { constraint_name?: unknown }).constraint_name;
  if (typeof constraint === "string") out.constraint = constraint;
  if (frames.length > 0) out.stack = [`${error.name}: ${message}`, ...frames.slice(0, 12)].join("\n");
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined && cause !== null && depth < 3) out.cause = describeError(cause, depth + 1);
  return out;
}

/** A string holding a Drizzle query error's text (`String(error)` at a call site) loses the query. */
function redact(text: string): string {
  const at = text.indexOf("Failed query: ");
  return at < 0 ? text : `${text.slice(0, at)}a database statement failed (statement and parameters not logged)`;
}

/** Errors in fields become their description; strings holding a failed statement are redacted. */
function clean(fields: Fields): Fields {
  let out: Fields | null = null;
  for (const key in fields) {
    const value = fields[key];
    let replaced: unknown = value;
    if (value instanceof Error) replaced = describeError(value);
    else if (typeof value === "string" && value.includes("Failed query: ")) replaced = redact(value);
    if (replaced !== value) {
      out ??= { ...fields };
      out[key] = replaced;
    }
  }
  return out ?? fields;
}

function wrap(base: pino.Logger): Logger {
  const method = (level: Level) => (msg: string, fields?: Fields) => {
    if (!base.isLevelEnabled(level)) return;
    if (fields === undefined) base[level](msg);
    else base[level](clean(fields), msg);
  };
  return {
    debug: method("debug"),
    info: method("info"),
    warn: method("warn"),
    error: method("error"),
    enabled: (level) => base.isLevelEnabled(level),
    child: (bindings) => wrap(base.child(clean(bindings))),
  };
}

/**
 * Line format kept from before pino (the README shows it): `"level":"info"` as a word, `time` in
 * ISO 8601, `msg`; no pid or hostname.
 */
function createPino(level: Level, destination: pino.DestinationStream): pino.Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/**
 * The logger on stdout. Writes are asynchronous (sonic-boom, `sync: false`) so a burst of send lines
 * does not block the event loop on the pipe; `flush()` writes what is left before the process exits.
 */
export function createLogger(level: Level = "info", destination?: pino.DestinationStream): RootLogger {
  const stdout = destination ?? pino.destination({ dest: 1, sync: false });
  const base = createPino(level, stdout);
  return Object.assign(wrap(base), {
    /**
     * Waits (at most 1 s) for a write already handed to the file system, then writes the rest
     * synchronously. `flushSync()` alone leaves a write in flight behind: a process that exited
     * right after it lost its last lines ("stopped") under load. `flush(cb)` does not wait either
     * (it calls back at once with sonic-boom's default minLength 0), so this watches its
     * `_writing` flag (sonic-boom 4, pinned by bun.lock).
     */
    async flush() {
      const stream = stdout as { _writing?: boolean; flushSync?: () => void };
      const deadline = Date.now() + 1000;
      while (stream._writing && Date.now() < deadline) await Bun.sleep(2);
      try {
        stream.flushSync?.();
      } catch {
        // nothing more can be done for a closed stdout
      }
    },
  });
}

/** A logger that keeps its lines in memory, for tests. */
export function memoryLogger(level: Level = "debug"): RootLogger & { lines: Fields[] } {
  const lines: Fields[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line) as Fields) });
  return Object.assign(logger, { lines });
}
