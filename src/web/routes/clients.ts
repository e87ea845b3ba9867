/**
 * The clients page (SPEC §9): search by phone digits, filter by tag and operator code, cursor
 * pagination, add, edit inline, delete — through ClientService, like the API. `POST /clients`
 * creates, `POST /clients?id=N` saves an edited row: form posts under `/clients/…` would be read
 * as JSON by the body parser of the original service's routes (src/http/body.ts).
 */
import { Elysia } from "elysia";
import { type ClientService, checkClientFields } from "../../clients/service";
import { Problem } from "../../problems";
import type { ClientView } from "../../clients/model";
import { attempt, fieldMessages, formValues } from "../forms";
import { csvResponse, exportClients } from "../../clients/export";
import { maxUploadBytes } from "./import";
import { attributeLines, attributesNeedApi, parseAttributeLines } from "../attributes";
import type { Page, Web } from "../context";

export const clientsPageSize = 50;

type Ctx = { request: Request; body: unknown; params: { id?: string }; query: Record<string, string | undefined> };

const fields = ["phone_number", "tag", "timezone"] as const;

/**
 * The form's `attributes` textarea (one `name=value` a line) as the service's field: absent (a
 * disabled textarea: values only the API can write) leaves them as they are; errors are the
 * field's message. The service's own errors (`attributes.<name>`) are shown under the same field.
 */
function attributesOf(body: unknown, page: Page): { given: boolean; text: string; value?: Record<string, string>; error?: string } {
  const raw = body !== null && typeof body === "object" ? (body as Record<string, unknown>).attributes : undefined;
  if (typeof raw !== "string") return { given: false, text: "" };
  const parsed = parseAttributeLines(raw, page.tr);
  return "error" in parsed ? { given: true, text: raw, error: parsed.error } : { given: true, text: raw, value: parsed.value };
}

/** Field messages with every `attributes.<name>` error (the service's, in English) under `attributes`. */
function withAttributeErrors(errors: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, message] of Object.entries(errors)) {
    if (!field.startsWith("attributes.")) out[field] = message;
    else out.attributes = [out.attributes, `${field.slice("attributes.".length)}: ${message}`].filter(Boolean).join(" ");
  }
  return out;
}

/** The other fields' messages when the attributes text was refused before the service ran. */
function otherFieldErrors(page: Page, values: Record<string, string>, creating: boolean): Record<string, string> {
  try {
    checkClientFields(creating ? { ...values, timezone: values.timezone || undefined } : values, creating);
    return {};
  } catch (error) {
    if (error instanceof Problem) return fieldMessages(page.tr, "clients", error.errors, error.status);
    throw error;
  }
}

/** Time zones offered by the inputs' suggestion list (any IANA name is accepted). */
const zones = Intl.supportedValuesOf("timeZone");

function id(raw: string | undefined): number | null {
  return raw !== undefined && /^\d{1,9}$/.test(raw) && Number(raw) > 0 ? Number(raw) : null;
}

export function clientPageRoutes(web: Web, clients: ClientService) {
  const filterOf = (query: Ctx["query"]) => ({
    q: (query.q ?? "").replace(/\D/g, "").slice(0, 15),
    tag: (query.tag ?? "").slice(0, 64),
    code: (query.code ?? "").replace(/\D/g, "").slice(0, 3),
    cursor: id(query.cursor),
  });

  const show = async (page: Page, query: Ctx["query"], data: Record<string, unknown> = {}, status = 200) => {
    const filter = filterOf(query);
    const list = await clients.list(
      { q: filter.q || undefined, tag: filter.tag || undefined, operatorCode: filter.code || undefined },
      clientsPageSize,
      filter.cursor,
    );
    const params = new URLSearchParams();
    if (filter.q) params.set("q", filter.q);
    if (filter.tag) params.set("tag", filter.tag);
    if (filter.code) params.set("code", filter.code);
    const base = params.toString();
    const next = list.next_cursor === null ? null : `/clients?${base ? `${base}&` : ""}cursor=${list.next_cursor}`;
    return web.render(
      page,
      "./clients",
      {
        title: page.tr.t("clients.title"),
        filter,
        items: list.items,
        next,
        first: filter.cursor === null ? null : `/clients${base ? `?${base}` : ""}`,
        exportUrl: `/clients/export${base ? `?${base}` : ""}`,
        importMaxMb: maxUploadBytes / 1024 / 1024,
        zones,
        values: { phone_number: "", tag: "", timezone: "", attributes: "" },
        errors: {},
        flash: null,
        ...data,
      },
      status,
    );
  };

  const row = (page: Page, client: ClientView, template: "row" | "edit", data: Record<string, unknown> = {}, status = 200) =>
    web.render(
      page,
      `./clients/_${template}`,
      {
        client,
        zones,
        values: { ...client, attributes: attributeLines(client.attributes) },
        attributesApiOnly: attributesNeedApi(client.attributes),
        errors: {},
        ...data,
        wholePage: true,
      },
      status,
    );

  /** One client's row, as shown or as its inline edit form (the two GETs differ only in that). */
  const clientRow = (template: "row" | "edit") =>
    web.handler<Ctx>("user", async (page, ctx) => {
      const client = id(ctx.params.id);
      const result = client === null ? null : await attempt(() => clients.get(client));
      return result?.ok ? row(page, result.value, template) : web.error(page, 404, "error.notFound");
    });

  return new Elysia()
    .get(
      "/clients/export",
      web.handler<Ctx>("user", (page, ctx) => {
        const filter = filterOf(ctx.query);
        const stream = exportClients(clients, { q: filter.q || undefined, tag: filter.tag || undefined, operatorCode: filter.code || undefined });
        return csvResponse(stream, "clients.csv", page.headers);
      }),
      { detail: { hide: true } },
    )
    .get("/clients", web.handler<Ctx>("user", (page, ctx) => show(page, ctx.query)), { detail: { hide: true } })
    .post(
      "/clients",
      web.handler<Ctx>("user", async (page, ctx) => {
        const values = formValues(ctx.body, fields);
        const attributes = attributesOf(ctx.body, page);
        const typed = { ...values, attributes: attributes.text };
        const editing = id(ctx.query.id);
        if (editing !== null) {
          const attempted = attributes.error
            ? null
            : await attempt(() => clients.update(editing, { ...values, ...(attributes.given ? { attributes: attributes.value } : {}) }));
          if (attempted?.ok) return row(page, attempted.value, "row");
          if (attempted?.problem.status === 404) return web.error(page, 404, "error.notFound");
          const current = await attempt(() => clients.get(editing));
          if (!current.ok) return web.error(page, 404, "error.notFound");
          const errors = attempted ? withAttributeErrors(fieldMessages(page.tr, "clients", attempted.problem.errors, attempted.problem.status)) : otherFieldErrors(page, values, false);
          if (attributes.error) errors.attributes = attributes.error;
          return row(page, current.value, "edit", { values: attributes.given ? typed : { ...typed, attributes: attributeLines(current.value.attributes) }, errors }, 422);
        }
        const result = attributes.error
          ? null
          : await attempt(() => clients.create({ ...values, timezone: values.timezone || undefined, ...(attributes.value && Object.keys(attributes.value).length > 0 ? { attributes: attributes.value } : {}) }));
        if (!result?.ok) {
          const errors = result ? withAttributeErrors(fieldMessages(page.tr, "clients", result.problem.errors, result.problem.status)) : otherFieldErrors(page, values, true);
          if (attributes.error) errors.attributes = attributes.error;
          return show(page, ctx.query, { values: typed, errors }, 422);
        }
        return show(page, ctx.query, { flash: page.tr.t("clients.created", { phone: result.value.phone_number }) }, 201);
      }),
      { detail: { hide: true } },
    )
    .get("/clients/:id/edit", clientRow("edit"), { detail: { hide: true } })
    .get("/clients/:id/row", clientRow("row"), { detail: { hide: true } })
    .delete(
      "/clients/:id",
      web.handler<Ctx>("user", async (page, ctx) => {
        const client = id(ctx.params.id);
        const result = client === null ? null : await attempt(() => clients.remove(client));
        return result?.ok ? new Response(null, { status: 200, headers: page.headers }) : web.error(page, 404, "error.notFound");
      }),
      { detail: { hide: true } },
    );
}
