/**
 * Issue 13, item 1 with a real process: /metrics scraped while a mailing sends through the fake
 * gateway (10 % retryable 5xx, 5 % refusals). While sending, the scrape shows sends and a backlog;
 * at the end, messages by status match the table and the send counters match what the gateway saw.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type FakeGateway, startFakeGateway } from "../../src/gateway/fake-server";
import { type TestDatabase, freshDatabase } from "../support/db";
import { createOpenMailing, insertClients, killAll, startWorker, statusCounts, waitFor, type Worker } from "../support/processes";

setDefaultTimeout(90_000);

const metricsToken = "process-metrics-token-0123456789";

/** The value of one sample (`name{labels} value`), 0 when absent. */
export function sample(text: string, name: string, labels = ""): number {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length)) : 0;
}

describe.skipIf(!process.env.DATABASE_URL)("[postgres] §10 /metrics scraped while a mailing sends", () => {
  let db: TestDatabase;
  let gateway: FakeGateway;
  const workers: Worker[] = [];
  afterAll(async () => {
    await killAll(workers);
    await gateway?.stop();
    await db?.drop();
  });

  test("scrapes during and after sending agree with the database and the gateway", async () => {
    db = await freshDatabase("postgres");
    gateway = startFakeGateway({ latencyMs: 5, failRate: 0.1, rejectRate: 0.05 });
    const worker = await startWorker({
      databaseUrl: db.url!,
      providerUrl: gateway.url,
      env: { METRICS_TOKEN: metricsToken, SEND_CONCURRENCY: "10", CLAIM_BATCH: "50", RETRY_DELAY_SECONDS: "3600" },
      keepLine: (l) => l.msg !== "send",
    });
    workers.push(worker);
    const scrape = async () => {
      const r = await fetch(`${worker.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
      expect(r.status).toBe(200);
      return r.text();
    };
    expect((await fetch(`${worker.url}/metrics`)).status).toBe(401);

    await insertClients(db.database, 3000);
    const mailingId = await createOpenMailing(worker);
    // A scrape taken while the mailing is half-way: sends counted, messages still waiting.
    const during = await waitFor(
      async () => {
        const text = await scrape();
        return sample(text, "notification_sends_total", 'outcome="sent"') > 0 && sample(text, "notification_messages", 'status="scheduled"') > 0 ? text : undefined;
      },
      60_000,
      "a scrape while sending",
      20,
    );
    expect(sample(during, "notification_due_backlog")).toBeGreaterThan(0);
    expect(sample(during, "notification_claim_batch_size_count")).toBeGreaterThan(0);

    const final = await waitFor(
      async () => {
        const counts = await statusCounts(db.database, mailingId);
        return (counts.scheduled ?? 0) + (counts.sending ?? 0) === 0 ? counts : undefined;
      },
      60_000,
      "every message to be tried once",
      100,
    );
    const text = await scrape();
    for (const status of ["sent", "failed", "retrying"]) {
      expect(sample(text, "notification_messages", `status="${status}"`), status).toBe(final[status] ?? 0);
    }
    expect(sample(text, "notification_sends_total", 'outcome="sent"')).toBe(final.sent!);
    expect(sample(text, "notification_sends_total", 'outcome="failed"')).toBe(final.failed!);
    expect(sample(text, "notification_sends_total", 'outcome="retry"')).toBe(final.retrying!);
    expect(sample(text, "notification_gateway_errors_total", 'kind="http_5xx"')).toBe(final.retrying!);
    expect(sample(text, "notification_gateway_errors_total", 'kind="http_4xx"')).toBe(final.failed!);
    expect(sample(text, "notification_send_duration_seconds_count", 'outcome="sent"')).toBe(final.sent!);
    expect(sample(text, "notification_claim_batch_size_sum")).toBeGreaterThanOrEqual(3000);
    // The backlog count may be up to 10 s old: wait for one taken after the end.
    await waitFor(async () => (sample(await scrape(), "notification_due_backlog") === 0 ? true : undefined), 30_000, "an empty backlog", 500);
    expect(sample(text, "notification_oldest_due_age_seconds")).toBe(0);
    expect(sample(text, "http_request_duration_seconds_count", 'method="POST",route="/api/v1/mailings",status="201"')).toBe(1);
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(text).toContain("nodejs_eventloop_lag_p99_seconds");
    // The request lines of this run: every one carries a route template and a request id.
    const requests = worker.lines.filter((l) => l.msg === "request");
    expect(requests.length).toBeGreaterThan(0);
    for (const line of requests) expect(line).toMatchObject({ route: expect.any(String), request_id: expect.any(String) });
    expect(JSON.stringify(worker.lines)).not.toContain(metricsToken);
  });
});
