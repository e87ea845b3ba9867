/**
 * The time-zone preview of a mailing being typed (SPEC §4, §9): how many clients match, in which
 * zones, and the instant each zone's group is due — computed with the same planZones as planning,
 * once per distinct zone. Reads only; an incomplete form gives `null`, not an error.
 */
import { and, count, desc, inArray, type SQL } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Database } from "../db/client";
import { clients } from "../db/schema";
import { isClockTime, type SendWindow } from "../time/send-window";
import { parseWallTime } from "../time/wall-time";
import { planZones } from "../time/zone-plan";
import { longestRendering } from "./personalise";
import type { SmsLength } from "./template";

export type PreviewInput = { start_time: string; end_time: string; tags: string[]; codes: string[]; window: SendWindow | null };

export type ZonePreview = {
  zone: string;
  clients: number;
  /** when the zone's group is due, and when its window closes (epoch ms) */
  dueAt: number;
  expiresAt: number;
  /** the window is over already in this zone: its clients get nothing */
  past: boolean;
  /** due already: sent as soon as the mailing is created */
  now: boolean;
};

export type Preview = { total: number; zones: ZonePreview[] };

/** At most this many zones are listed (largest first); the rest are summed in `total`. */
export const previewZones = 50;

export class MailingPreview {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  /** The SMS length of the text's longest rendering for the clients the filters match (personalise.ts). */
  sms(text: string, tags: string[], codes: string[]): Promise<SmsLength | null> {
    if (text.trim() === "") return Promise.resolve(null);
    return longestRendering(this.database.db, text, { tagsFilter: tags, codesFilter: codes.filter((c) => /^\d{3}$/.test(c)) });
  }

  async preview(input: PreviewInput): Promise<Preview | null> {
    const start = parseWallTime(input.start_time);
    const end = parseWallTime(input.end_time);
    if (!start || !end) return null;
    const window = input.window && isClockTime(input.window.from) && isClockTime(input.window.to) ? input.window : null;
    const codes = input.codes.filter((c) => /^\d{3}$/.test(c));
    const conditions: SQL[] = [];
    if (input.tags.length > 0) conditions.push(inArray(clients.tag, input.tags));
    if (codes.length > 0) conditions.push(inArray(clients.operatorCode, codes));
    const rows = await this.database.db
      .select({ zone: clients.timezone, n: count() })
      .from(clients)
      .where(and(...conditions))
      .groupBy(clients.timezone)
      .orderBy(desc(count()), clients.timezone);
    const now = this.clock.now().getTime();
    const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
    const shown = rows.slice(0, previewZones);
    const plans = planZones({ start, end, window }, shown.map((r) => r.zone), now);
    return {
      total,
      zones: shown.map((r, i) => {
        const plan = plans[i]!;
        return {
          zone: r.zone,
          clients: Number(r.n),
          dueAt: plan.dueAt,
          expiresAt: plan.expiresAt,
          past: plan.expiresAt <= Math.max(now, plan.dueAt),
          now: plan.dueAt <= now && plan.expiresAt > now,
        };
      }),
    };
  }
}
