/**
 * CSV import from the clients page (issue 11), in three steps: upload → check (rows, valid rows,
 * how many match open mailings and will be sent to at once) → confirm → the import runs in the
 * background while the page polls its progress → the report with the per-line errors.
 *
 * Uploads are POSTed to a path ending in /clients/import so that the app's 1 MiB cap on JSON bodies
 * does not apply (as for the API's import); the browser's file is kept in memory until confirmed,
 * so it is capped at `maxUploadBytes` (larger files: the streamed API). Jobs belong to their user,
 * live at most an hour, one not running per user, and at most `maxJobs` (running ones included).
 */
import { Readable } from "node:stream";
import { Elysia } from "elysia";
import type { Clock } from "../../clock";
import type { ClientImporter, ImportReport } from "../../clients/import";
import type { ImportChecker } from "../../clients/import-check";
import { Problem } from "../../problems";
import { randomSecret } from "../../auth/crypto";
import type { Page, Web } from "../context";

export const maxUploadBytes = 20 * 1024 * 1024;
const maxJobs = 20;
const jobLifetimeMs = 3600_000;

type Job = {
  id: string;
  userId: number;
  csv: string;
  createdAt: number;
  rows: number;
  state: "checked" | "running" | "done" | "failed";
  report: ImportReport | null;
  check: { rows: number; valid: number; matching: number; mailings: number };
  error: string | null;
};

type Ctx = { request: Request; body: unknown; params: { id?: string } };

export function importRoutes(web: Web, importer: ClientImporter, checker: ImportChecker, clock: Clock) {
  const jobs = new Map<string, Job>();

  /**
   * Makes room for a new job of `userId`, or says there is none. A user keeps one job that is not
   * running (a new upload replaces it); finished jobs of others go oldest first. Unconfirmed and
   * running jobs of others are never dropped to make room: one user could otherwise throw away
   * everyone's uploads, or pin `maxJobs` files of `maxUploadBytes` each and start imports without end.
   */
  const makeRoom = (userId: number): boolean => {
    const now = clock.now().getTime();
    for (const [id, job] of jobs) {
      const idle = job.state !== "running";
      if (idle && (now - job.createdAt > jobLifetimeMs || job.userId === userId)) jobs.delete(id);
    }
    for (const [id, job] of jobs) {
      if (jobs.size < maxJobs) break;
      if (job.state === "done" || job.state === "failed") jobs.delete(id);
    }
    return jobs.size < maxJobs;
  };

  const jobOf = (page: Page, id: string | undefined) => {
    const job = id ? jobs.get(id) : undefined;
    return job && job.userId === page.user!.userId ? job : null;
  };

  const show = (page: Page, data: Record<string, unknown>, status = 200) =>
    web.render(page, "./clients/_import", { job: null, error: null, maxMb: maxUploadBytes / 1024 / 1024, ...data, wholePage: true }, status);

  return new Elysia()
    .post(
      "/web/clients/import",
      web.handler<Ctx>("user", async (page, ctx) => {
        const file = (ctx.body as Record<string, unknown> | undefined)?.file;
        if (!(file instanceof Blob) || file.size === 0) return show(page, { error: page.tr.t("import.noFile") }, 422);
        if (file.size > maxUploadBytes) return show(page, { error: page.tr.t("import.tooLarge", { mb: maxUploadBytes / 1024 / 1024 }) }, 422);
        const csv = await file.text();
        const check = await checker.check(csv);
        if (!check.ok) return show(page, { error: page.tr.t("import.invalid", { message: check.message }) }, 422);
        if (!makeRoom(page.user!.userId)) return show(page, { error: page.tr.t("import.busy") }, 429);
        const job: Job = {
          id: randomSecret("imp_"),
          userId: page.user!.userId,
          csv,
          createdAt: clock.now().getTime(),
          rows: check.rows,
          state: "checked",
          report: null,
          check,
          error: null,
        };
        jobs.set(job.id, job);
        return show(page, { job });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/web/clients/import/:id/start",
      web.handler<Ctx>("user", (page, ctx) => {
        const job = jobOf(page, ctx.params.id);
        if (!job) return web.error(page, 404, "error.notFound");
        if (job.state === "checked") {
          job.state = "running";
          const csv = job.csv;
          job.csv = "";
          importer
            .import(Readable.from([Buffer.from(csv)]), (report) => (job.report = { ...report, errors: [...report.errors] }))
            .then((report) => {
              job.report = report;
              job.state = "done";
            })
            .catch((error: unknown) => {
              job.state = "failed";
              job.error = error instanceof Problem ? error.detail : "the import failed";
            });
        }
        return show(page, { job });
      }),
      { detail: { hide: true } },
    )
    .get(
      "/web/clients/import/:id",
      web.handler<Ctx>("user", (page, ctx) => {
        const job = jobOf(page, ctx.params.id);
        return job ? show(page, { job }) : web.error(page, 404, "error.notFound");
      }),
      { detail: { hide: true } },
    )
    .post(
      "/web/clients/import/:id/discard",
      web.handler<Ctx>("user", (page, ctx) => {
        const job = jobOf(page, ctx.params.id);
        if (job && job.state !== "running") jobs.delete(job.id);
        return show(page, {});
      }),
      { detail: { hide: true } },
    );
}
