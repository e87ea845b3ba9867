/**
 * Mailing pages (SPEC §9): the list by status with a create form, and a mailing's page with live
 * per-status counts, its messages by status, and pause / resume / cancel / delete — all through
 * MailingService and StatsService, like the API.
 */
import { Elysia } from "elysia";
import type { MailingService } from "../../mailings/service";
import { type MailingPreview, previewZones } from "../../mailings/preview";
import type { MailingStatus, MailingView } from "../../mailings/model";
import type { StatsService } from "../../stats/service";
import type { ClientService } from "../../clients/service";
import { countedStates, messageStates, type MessageState } from "../../dispatch/states";
import { attempt, fieldMessages, formValues } from "../forms";
import type { Page, Web } from "../context";
import { redirect } from "../render";
import { barChart } from "../chart";
import { csvResponse } from "../../clients/export";
import { pollSeconds } from "./dashboard";
import { type AuditLog, requestAddress } from "../../audit/log";

type Ctx = { request: Request; body: unknown; params: { id?: string }; query: Record<string, string | undefined> };

const mailingStatuses: MailingStatus[] = ["scheduled", "running", "paused", "finished", "cancelled"];
const formFields = ["text", "start_time", "end_time", "tags", "codes", "window_from", "window_to"] as const;
type MailingForm = Record<(typeof formFields)[number], string>;

const emptyForm: MailingForm = { text: "", start_time: "", end_time: "", tags: "", codes: "", window_from: "", window_to: "" };

/** A mailing as the form shows it (the inputs take minutes: `:00` seconds are dropped). */
function formOf(m: MailingView): MailingForm {
  const minutes = (wall: string) => (wall.endsWith(":00") && wall.length === 19 ? wall.slice(0, 16) : wall);
  return {
    text: m.text,
    start_time: minutes(m.start_time),
    end_time: minutes(m.end_time),
    tags: m.tags_filter.join(", "),
    codes: m.codes_filter.join(", "),
    window_from: m.send_window?.from ?? "",
    window_to: m.send_window?.to ?? "",
  };
}

function id(raw: string | undefined): number | null {
  return raw !== undefined && /^\d{1,9}$/.test(raw) && Number(raw) > 0 ? Number(raw) : null;
}

const list = (raw: string) =>
  raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** The service's field names → the form's (`codes_filter.2` → `codes`, `send_window.from` → `window_from`). */
function formField(field: string): string {
  if (field.startsWith("codes_filter")) return "codes";
  if (field.startsWith("tags_filter")) return "tags";
  if (field === "send_window.from" || field === "send_window") return "window_from";
  if (field === "send_window.to") return "window_to";
  return field;
}

export function mailingPageRoutes(web: Web, mailings: MailingService, stats: StatsService, previews: MailingPreview, clients: ClientService, audit: AuditLog) {
  const record = (page: Page, ctx: Ctx, kind: "mailing.deleted" | "mailing.cancelled", mailingId: number) =>
    audit.record({ kind, actorUserId: page.user!.userId, target: `mailing:${mailingId}`, ip: requestAddress(ctx) });
  const showList = async (page: Page, query: Ctx["query"], data: Record<string, unknown> = {}, status = 200) => {
    const filter = mailingStatuses.includes(query.status as MailingStatus) ? (query.status as MailingStatus) : undefined;
    const result = await mailings.list(filter, 50, id(query.cursor));
    const next = result.next_cursor === null ? null : `/mailings?${filter ? `status=${filter}&` : ""}cursor=${result.next_cursor}`;
    return web.render(
      page,
      "./mailings",
      { title: page.tr.t("mailings.title"), statuses: mailingStatuses, filter, items: result.items, next, values: emptyForm, errors: {}, ...data },
      status,
    );
  };

  const showMailing = async (page: Page, mailingId: number, query: Ctx["query"], data: Record<string, unknown> = {}, code = 200) => {
    const status = (messageStates as readonly string[]).includes(query.status ?? "") ? (query.status as MessageState) : undefined;
    // The three reads at once, on pooled connections; the page of messages is read once (it was
    // read twice, through forMailing and again for its zones' columns).
    const [result, messages, sends] = await Promise.all([
      attempt(() => stats.summary(mailingId)),
      stats.messages(mailingId, status, 50, id(query.cursor)),
      stats.sendsOf(mailingId),
    ]);
    if (!result.ok) return web.error(page, 404, "error.notFound");
    const { mailing, by_status, total } = result.value;
    const zones = await clients.timezones([...new Set(messages.items.map((m) => m.client_id))]);
    const pending = by_status.scheduled + by_status.sending + by_status.retrying;
    // Polls while something can still change without anyone acting: a scheduled or running
    // mailing with messages left. Paused, cancelled and finished ones stand still.
    const live = (mailing.status === "running" || mailing.status === "scheduled") && pending > 0;
    return web.render(page, "./mailing", {
      title: `${page.tr.t("mailing.title")} #${mailing.id}`,
      mailing,
      counts: by_status,
      total,
      done: total - pending,
      states: countedStates,
      messageStates,
      statusFilter: status,
      messages: messages.items.map((m) => ({ ...m, zone: zones.get(m.client_id) ?? null })),
      next: messages.next_cursor === null ? null : `/mailings/${mailing.id}?${status ? `status=${status}&` : ""}cursor=${messages.next_cursor}`,
      live,
      pollSeconds,
      chart: barChart(page.tr, "mailing-chart", page.tr.t("mailing.chart"), sends.points),
      chartBucket: sends.widthMinutes,
      values: formOf(mailing),
      errors: {},
      ...data,
    }, code);
  };

  const act = (action: "pause" | "resume" | "cancel") =>
    web.handler<Ctx>("user", async (page, ctx) => {
      const mailingId = id(ctx.params.id);
      const result = mailingId === null ? null : await attempt(() => mailings[action](mailingId));
      if (!result) return web.error(page, 404, "error.notFound");
      if (!result.ok && result.problem.status === 404) return web.error(page, 404, "error.notFound");
      if (result.ok && action === "cancel") await record(page, ctx, "mailing.cancelled", mailingId!);
      return redirect(`/mailings/${mailingId}`, page.htmx, page.headers);
    });

  /**
   * Edits through MailingService.update (PATCH for htmx, POST …/edit for a plain form). Only the
   * fields that differ from the mailing go into the patch: re-sending an unchanged start that has
   * passed would be refused as a start in the past.
   */
  const edit = web.handler<Ctx>("user", async (page, ctx) => {
    const mailingId = id(ctx.params.id);
    const current = mailingId === null ? null : await attempt(() => mailings.get(mailingId));
    if (mailingId === null || !current?.ok) return web.error(page, 404, "error.notFound");
    const values = formValues(ctx.body, formFields);
    const before = formOf(current.value);
    const changed = (name: keyof MailingForm) => values[name] !== before[name];
    const window = values.window_from || values.window_to ? { from: values.window_from, to: values.window_to } : null;
    const patch = {
      ...(changed("text") ? { text: values.text } : {}),
      ...(changed("start_time") ? { start_time: values.start_time } : {}),
      ...(changed("end_time") ? { end_time: values.end_time } : {}),
      ...(changed("tags") ? { tags_filter: list(values.tags) } : {}),
      ...(changed("codes") ? { codes_filter: list(values.codes) } : {}),
      ...(changed("window_from") || changed("window_to") ? { send_window: window } : {}),
    };
    const result = await attempt(() => mailings.update(mailingId, patch));
    if (!result.ok) {
      if (result.problem.status === 409) return web.error(page, 409, "mailing.notEditable");
      const errors = fieldMessages(page.tr, "mailings", result.problem.errors.map((e) => ({ ...e, field: formField(e.field) })), result.problem.status);
      return showMailing(page, mailingId, {}, { values, errors, editOpen: true }, 422);
    }
    return redirect(`/mailings/${mailingId}`, page.htmx, page.headers);
  });

  return new Elysia()
    .get("/mailings", web.handler<Ctx>("user", (page, ctx) => showList(page, ctx.query)), { detail: { hide: true } })
    .get(
      "/mailings/preview",
      web.handler<Ctx>("user", async (page, ctx) => {
        const q = (name: string) => (ctx.query[name] ?? "").slice(0, 2000);
        const window = q("window_from") && q("window_to") ? { from: q("window_from"), to: q("window_to") } : null;
        const preview = await previews.preview({ start_time: q("start_time"), end_time: q("end_time"), tags: list(q("tags")), codes: list(q("codes")), window });
        const sms = await previews.sms(q("text"), list(q("tags")), list(q("codes")));
        return web.render(page, "./mailings/_preview", { preview, sms, previewZones, wholePage: true });
      }),
      { detail: { hide: true } },
    )
    .post(
      "/mailings",
      web.handler<Ctx>("user", async (page, ctx) => {
        const values = formValues(ctx.body, formFields);
        const window = values.window_from || values.window_to ? { from: values.window_from, to: values.window_to } : null;
        const result = await attempt(() =>
          mailings.create({
            text: values.text,
            start_time: values.start_time,
            end_time: values.end_time,
            tags_filter: list(values.tags),
            codes_filter: list(values.codes),
            send_window: window,
          }),
        );
        if (!result.ok) {
          const errors = fieldMessages(page.tr, "mailings", result.problem.errors.map((e) => ({ ...e, field: formField(e.field) })), result.problem.status);
          return showList(page, ctx.query, { values, errors, open: true }, 422);
        }
        return redirect(`/mailings/${result.value.id}`, page.htmx, page.headers);
      }),
      { detail: { hide: true } },
    )
    .patch("/mailings/:id", edit, { detail: { hide: true } })
    .post("/mailings/:id/edit", edit, { detail: { hide: true } })
    .get(
      "/mailings/:id",
      web.handler<Ctx>("user", (page, ctx) => {
        const mailingId = id(ctx.params.id);
        return mailingId === null ? web.error(page, 404, "error.notFound") : showMailing(page, mailingId, ctx.query);
      }),
      { detail: { hide: true } },
    )
    .get(
      "/mailings/:id/export",
      web.handler<Ctx>("user", async (page, ctx) => {
        const mailingId = id(ctx.params.id);
        const status = (messageStates as readonly string[]).includes(ctx.query.status ?? "") ? (ctx.query.status as MessageState) : undefined;
        const stream = mailingId === null ? null : await attempt(() => stats.exportMessages(mailingId, status));
        if (!stream?.ok) return web.error(page, 404, "error.notFound");
        return csvResponse(stream.value, `mailing-${mailingId}-messages.csv`, page.headers);
      }),
      { detail: { hide: true } },
    )
    .post("/mailings/:id/pause", act("pause"), { detail: { hide: true } })
    .post("/mailings/:id/resume", act("resume"), { detail: { hide: true } })
    .post("/mailings/:id/cancel", act("cancel"), { detail: { hide: true } })
    .post(
      "/mailings/:id/delete",
      web.handler<Ctx>("user", async (page, ctx) => {
        const mailingId = id(ctx.params.id);
        const result = mailingId === null ? null : await attempt(() => mailings.remove(mailingId));
        if (!result?.ok) return web.error(page, 404, "error.notFound");
        await record(page, ctx, "mailing.deleted", mailingId!);
        return redirect("/mailings", page.htmx, page.headers);
      }),
      { detail: { hide: true } },
    );
}
