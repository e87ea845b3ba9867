/** SPEC §10 log lines: their format, child loggers, and what an error line may carry. */
import { describe, expect, test } from "bun:test";
import { DrizzleQueryError } from "drizzle-orm";
import { memoryLogger } from "../../src/ops/logger";

const failedStatement = () => {
  const cause = Object.assign(new Error('duplicate key value violates unique constraint "clients_phone"'), { code: "23505" });
  return new DrizzleQueryError("insert into clients (phone_number) values ($1)", ["79101459028"], cause);
};

describe("§10 log lines", () => {
  test("one JSON object per line with time (ISO 8601), level as a word, msg and the fields", () => {
    const logger = memoryLogger("info");
    logger.info("send", { mailing_id: 3, outcome: "sent" });
    logger.debug("not written at info");
    expect(logger.lines).toHaveLength(1);
    const [line] = logger.lines;
    expect(line).toMatchObject({ level: "info", msg: "send", mailing_id: 3, outcome: "sent" });
    expect(String(line!.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Object.keys(line!)).not.toContain("pid");
  });

  test("a child logger carries its bindings on every line", () => {
    const logger = memoryLogger();
    const message = logger.child({ mailing_id: 3, message_id: 117, client_id: 42 });
    message.warn("claim lapsed before sending", { attempt: 2 });
    expect(logger.lines[0]).toMatchObject({ level: "warn", mailing_id: 3, message_id: 117, client_id: 42, attempt: 2 });
  });

  test("a failed statement is logged with its cause's code and message and a stack, without SQL or parameters", () => {
    const logger = memoryLogger();
    logger.error("write failed", { error: failedStatement() });
    const text = JSON.stringify(logger.lines[0]);
    expect(text).not.toContain("79101459028");
    expect(text).not.toContain("insert into");
    const error = logger.lines[0]!.error as { stack: string; cause: { code: string; message: string } };
    expect(error.cause).toMatchObject({ code: "23505", message: 'duplicate key value violates unique constraint "clients_phone"' });
    expect(error.stack).toContain("    at ");
  });

  test("a failed statement turned into a string at the call site loses its SQL and parameters", () => {
    const logger = memoryLogger();
    logger.error("tick failed", { error: String(failedStatement()), detail: `claim: ${String(failedStatement())}` });
    expect(JSON.stringify(logger.lines[0])).not.toContain("79101459028");
    expect(JSON.stringify(logger.lines[0])).not.toContain("insert into");
  });

  test("a network error keeps its code (ECONNREFUSED)", () => {
    const logger = memoryLogger();
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    logger.error("tick failed", { error: new Error("claim failed", { cause: refused }) });
    expect(logger.lines[0]!.error).toMatchObject({ message: "claim failed", cause: { code: "ECONNREFUSED" } });
  });
});
