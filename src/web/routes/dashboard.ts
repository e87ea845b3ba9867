/** The dashboard (SPEC §9): totals by status and the mailings running now, live while anything runs. */
import { Elysia } from "elysia";
import { countedStates } from "../../dispatch/states";
import type { StatsService } from "../../stats/service";
import type { Clock } from "../../clock";
import type { Web } from "../context";
import { barChart } from "../chart";

/** How often the live part asks again while a mailing runs. */
export const pollSeconds = 3;

export function dashboardRoutes(web: Web, stats: StatsService, clock: Clock) {
  return new Elysia().get(
    "/",
    web.handler("user", async (page) => {
      const [overall, sends] = await Promise.all([stats.overall(), stats.sendsLastHour()]);
      const running = overall.by_mailing.filter((m) => m.status === "running");
      const inFlight = (m: (typeof overall.by_mailing)[number]) => m.by_status.scheduled + m.by_status.sending + m.by_status.retrying;
      // Polling stops once no running mailing has anything left to send: a finished mailing's
      // counts no longer change, and the page then asks nothing more.
      const live = running.some((m) => inFlight(m) > 0);
      return web.render(page, "./dashboard", {
        title: page.tr.t("dashboard.title"),
        states: countedStates,
        totals: overall.messages,
        mailingCount: overall.mailings,
        running: running.map((m) => ({ ...m, done: m.total - inFlight(m) })),
        live,
        pollSeconds,
        updatedAt: clock.now(),
        chart: barChart(page.tr, "sends-chart", page.tr.t("dashboard.chart"), sends),
      });
    }),
    { detail: { hide: true } },
  );
}
