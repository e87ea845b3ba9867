/**
 * The daily report's wording (issue 13, item 3), one catalogue per language, and its rendering as
 * plain text and as HTML (every value from the database escaped). Users have no language setting
 * yet, so every admin gets English; the Russian catalogue is ready for when they do.
 */
export type ReportLocale = "en" | "ru";

export type ReportRow = { mailing_id: number; text: string; sent: number; failed: number; expired: number; cancelled: number };

export type Report = { day: string; timezone: string; rows: ReportRow[]; omitted: number };

type Catalogue = {
  subject(day: string): string;
  intro(day: string, timezone: string): string;
  none: string;
  mailing: string;
  sent: string;
  failed: string;
  expired: string;
  cancelled: string;
  total: string;
  omitted(n: number): string;
};

export const catalogues: Record<ReportLocale, Catalogue> = {
  en: {
    subject: (day) => `Daily mailing report for ${day}`,
    intro: (day, tz) => `Mailings that were open on ${day} (${tz}), with their messages so far:`,
    none: "No mailing was open that day.",
    mailing: "Mailing",
    sent: "sent",
    failed: "failed",
    expired: "expired",
    cancelled: "cancelled",
    total: "Total",
    omitted: (n) => `${n} more mailings are not listed.`,
  },
  ru: {
    subject: (day) => `Ежедневный отчёт о рассылках за ${day}`,
    intro: (day, tz) => `Рассылки, открытые ${day} (${tz}), и их сообщения на сегодня:`,
    none: "В этот день не было открытых рассылок.",
    mailing: "Рассылка",
    sent: "отправлено",
    failed: "ошибка",
    expired: "просрочено",
    cancelled: "отменено",
    total: "Итого",
    omitted: (n) => `Ещё ${n} рассылок не показаны.`,
  },
};

const columns = ["sent", "failed", "expired", "cancelled"] as const;

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A mailing's text shortened for a report line. */
function label(row: ReportRow): string {
  const text = row.text.replace(/\s+/g, " ").trim();
  return `#${row.mailing_id} ${text.length > 60 ? `${text.slice(0, 59)}…` : text}`;
}

function totals(rows: ReportRow[]): Record<(typeof columns)[number], number> {
  const sum = { sent: 0, failed: 0, expired: 0, cancelled: 0 };
  for (const r of rows) for (const c of columns) sum[c] += r[c];
  return sum;
}

export function renderReport(report: Report, locale: ReportLocale): { subject: string; text: string; html: string } {
  const t = catalogues[locale];
  const subject = t.subject(report.day);
  const sum = totals(report.rows);
  const lines = [t.intro(report.day, report.timezone), ""];
  if (report.rows.length === 0) lines.push(t.none);
  for (const r of report.rows) lines.push(`${label(r)}: ${columns.map((c) => `${t[c]} ${r[c]}`).join(", ")}`);
  if (report.rows.length > 0) lines.push("", `${t.total}: ${columns.map((c) => `${t[c]} ${sum[c]}`).join(", ")}`);
  if (report.omitted > 0) lines.push(t.omitted(report.omitted));
  const cell = (v: string | number) => `<td>${escapeHtml(String(v))}</td>`;
  const head = `<tr><th>${escapeHtml(t.mailing)}</th>${columns.map((c) => `<th>${escapeHtml(t[c])}</th>`).join("")}</tr>`;
  const body = report.rows.map((r) => `<tr>${cell(label(r))}${columns.map((c) => cell(r[c])).join("")}</tr>`).join("\n");
  const foot = `<tr><th>${escapeHtml(t.total)}</th>${columns.map((c) => cell(sum[c])).join("")}</tr>`;
  const html = [
    `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body>`,
    `<p>${escapeHtml(t.intro(report.day, report.timezone))}</p>`,
    report.rows.length === 0 ? `<p>${escapeHtml(t.none)}</p>` : `<table border="1" cellpadding="4">\n${head}\n${body}\n${foot}\n</table>`,
    report.omitted > 0 ? `<p>${escapeHtml(t.omitted(report.omitted))}</p>` : "",
    "</body></html>",
  ].join("\n");
  return { subject, text: `${lines.join("\n")}\n`, html };
}
