/**
 * Issue 4, target 6 — CSV import: 1,000,000 rows (quick: 5,000) streamed to
 * `POST /api/v1/clients/import` (Content-Type text/csv, header `phone_number,tag,timezone`) of a
 * spawned service (WORKER=1, sandbox provider, empty database). The CSV is generated as a stream
 * (a ReadableStream body sent with fetch, chunked), so the bench itself holds no more than one chunk.
 * Measured: time until the report arrives ≤ 30 s, the service's RSS peak (VmRSS every 50 ms)
 * ≤ 200 MB. Checked: the report says every row was created, none failed, and the table agrees.
 *
 * `--multipart`: the same CSV sent as the one file of a multipart/form-data upload (what a browser
 * form or `curl -F file=@clients.csv` sends), to show that path streams too.
 *
 * `--with-mailing`: an open mailing matching every client exists first (opening in two days), so
 * each batch is also planned into it (1,000,000 messages more); an extra figure, not the target.
 *
 *   bun bench/suites/import.ts [--quick] [--rows 1000000] [--with-mailing] [--multipart]
 */
import {
  ADMIN_KEY,
  benchZones,
  check,
  flag,
  freshPostgres,
  loadAverage,
  one,
  printTable,
  round2,
  rssMonitor,
  standalone,
  startService,
  stopService,
  timedRequest,
  verdict,
  wallTime,
  type SuiteOptions,
  type Worker,
} from "../support";

const tags = ["", "vip", "new", "old"];

/** `phone_number,tag,timezone` then `n` rows, produced 2,000 rows per chunk as the reader pulls. */
export function csvStream(n: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let next = 1;
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode("phone_number,tag,timezone\n"));
        return;
      }
      if (next > n) {
        controller.close();
        return;
      }
      let text = "";
      const end = Math.min(n, next + 1999);
      for (; next <= end; next++) {
        text += `79${String(next).padStart(9, "0")},${tags[next % tags.length]},${benchZones[next % benchZones.length]}\n`;
      }
      controller.enqueue(encoder.encode(text));
    },
  });
}

const boundary = "----bench-import-boundary";

/** `csv` as the one file part of a multipart/form-data body, still streamed. */
function multipartStream(csv: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clients.csv"\r\nContent-Type: text/csv\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const reader = csv.getReader();
  let state: "head" | "body" | "done" = "head";
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (state === "head") {
        state = "body";
        controller.enqueue(head);
        return;
      }
      if (state === "done") return controller.close();
      const next = await reader.read();
      if (next.done) {
        state = "done";
        controller.enqueue(tail);
        return;
      }
      controller.enqueue(next.value);
    },
  });
}

export async function run(options: SuiteOptions): Promise<Record<string, unknown>> {
  const argv = options.argv;
  const rows = options.quick ? 5_000 : flag(argv, "rows", 1_000_000);
  const withMailing = argv.includes("--with-mailing");
  const multipart = argv.includes("--multipart");
  const load = loadAverage();
  const db = await freshPostgres({ max: 4 });
  let service: Worker | null = null;
  try {
    service = await startService({ databaseUrl: db.url, worker: true });
    let mailingId: number | null = null;
    if (withMailing) {
      const m = await timedRequest(service.url, "POST", "/api/v1/mailings", {
        text: "Import bench: every imported client",
        start_time: wallTime(48),
        end_time: wallTime(72),
      });
      check(m.status === 201, `POST /api/v1/mailings answered ${m.status}`);
      mailingId = m.body.id;
    }
    await Bun.sleep(500);
    const monitor = rssMonitor(service.pid, 50);
    const baselineMb = monitor.peak();
    const started = performance.now();
    const response = await fetch(`${service.url}/api/v1/clients/import`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${ADMIN_KEY}`,
        "content-type": multipart ? `multipart/form-data; boundary=${boundary}` : "text/csv",
      },
      body: multipart ? multipartStream(csvStream(rows)) : csvStream(rows),
      // @ts-expect-error: Node's fetch wants it for a stream body; Bun ignores it
      duplex: "half",
    });
    const text = await response.text();
    const seconds = (performance.now() - started) / 1000;
    await Bun.sleep(300);
    const rss = monitor.stop();
    check(response.status === 200, `import answered ${response.status}: ${text.slice(0, 500)}`);
    const report = JSON.parse(text) as { rows: number; created: number; updated: number; failed: number; duplicates: number; errors: unknown[] };
    check(report.rows === rows, `report.rows ${report.rows}, sent ${rows}`);
    check(report.created === rows, `report.created ${report.created}, expected ${rows}`);
    check(report.failed === 0 && report.updated === 0 && report.duplicates === 0, `report: ${JSON.stringify(report).slice(0, 500)}`);
    const { n } = await one<{ n: number }>(db, `select count(*)::int as n from clients`);
    check(n === rows, `${n} clients in the table, expected ${rows}`);
    const zones = await db.sql.unsafe<{ timezone: string }[]>(`select distinct timezone from clients`);
    check(zones.length === benchZones.length, `expected ${benchZones.length} zones, found ${zones.length}`);
    let planned: number | null = null;
    if (mailingId !== null) {
      const { m } = await one<{ m: number }>(db, `select count(*)::int as m from messages where mailing_id = $1`, [mailingId]);
      check(m === rows, `the open mailing got ${m} messages, expected ${rows}`);
      planned = m;
    }

    const result = {
      rows,
      with_mailing: withMailing,
      multipart,
      messages_planned: planned,
      seconds: round2(seconds),
      rows_per_s: Math.round(rows / seconds),
      report_created: report.created,
      rss_baseline_mb: baselineMb,
      rss_peak_mb: rss.peakMb,
      rss_after_mb: rss.lastMb,
      load_average_at_start: load,
    };
    printTable(
      `CSV import: ${rows.toLocaleString("en")} rows streamed to POST /api/v1/clients/import${multipart ? " as multipart/form-data" : ""}${withMailing ? " (planned into one open mailing)" : ""} (PostgreSQL)`,
      [
        { figure: "until the report arrived, s", value: result.seconds, target: "≤ 30 s", verdict: withMailing ? "" : verdict(options.quick, seconds <= 30) },
        { figure: "rows per second", value: result.rows_per_s.toLocaleString("en") },
        { figure: "created (report)", value: report.created.toLocaleString("en") },
        ...(planned === null ? [] : [{ figure: "messages planned", value: planned.toLocaleString("en") }]),
        { figure: "service RSS before, MB", value: baselineMb },
        { figure: "service RSS peak, MB", value: rss.peakMb, target: "≤ 200 MB", verdict: withMailing ? "" : verdict(options.quick, rss.peakMb <= 200) },
        { figure: "service RSS after, MB", value: rss.lastMb },
        { figure: "load average at start", value: load },
      ],
    );
    return result;
  } finally {
    await stopService(service);
    await db.drop();
  }
}

if (import.meta.main) await standalone(run);
