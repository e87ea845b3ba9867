/**
 * A bar chart as data for templates/_chart.eta (inline SVG drawn on the server, no script): bars
 * scaled to the largest value, the largest value and the first and last time as labels, and the
 * values again as a table for screen readers.
 */
import type { SendPoint } from "../stats/sends";
import type { Translator } from "./i18n";

export type Chart = {
  id: string;
  title: string;
  desc: string;
  width: number;
  height: number;
  bars: { x: number; y: number; w: number; h: number; label: string }[];
  max: string;
  from: string;
  to: string;
  rows: { time: string; n: string }[];
  empty: boolean;
};

const width = 600;
const height = 160;

export function barChart(tr: Translator, id: string, title: string, points: SendPoint[]): Chart {
  const max = Math.max(0, ...points.map((p) => p.n));
  const step = points.length > 0 ? width / points.length : width;
  const time = (ms: number) => tr.instant(new Date(ms));
  const total = points.reduce((sum, p) => sum + p.n, 0);
  const bars = points.map((p, i) => {
    const h = max === 0 ? 0 : Math.max(p.n > 0 ? 1 : 0, Math.round((p.n / max) * (height - 4)));
    return { x: Math.round(i * step * 10) / 10, y: height - h, w: Math.max(1, Math.round((step - (step > 4 ? 1 : 0)) * 10) / 10), h, label: `${time(p.at)}: ${tr.num(p.n)}` };
  });
  const from = points.length > 0 ? time(points[0]!.at) : "";
  const to = points.length > 0 ? time(points[points.length - 1]!.at) : "";
  return {
    id,
    title,
    desc: tr.t("chart.desc", { total: tr.num(total), max: tr.num(max), from, to }),
    width,
    height,
    bars,
    max: tr.num(max),
    from,
    to,
    // Only minutes with sends: sixty rows of zeros say nothing to a screen reader.
    rows: points.filter((p) => p.n !== 0).map((p) => ({ time: time(p.at), n: tr.num(p.n) })),
    empty: total === 0,
  };
}
