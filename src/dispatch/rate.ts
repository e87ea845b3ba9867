/**
 * The send-rate cap across processes (PROVIDER_RATE messages per second, PROVIDER_BURST at once):
 * a token bucket in one PostgreSQL row (send_rate), refilled by elapsed time and taken from
 * atomically by each claim (the row lock orders the takers), so any number of workers together
 * stay under the cap. A gateway's 429 with Retry-After sets `paused_until` there: every process
 * takes nothing, and sends nothing it holds, before then.
 *
 * Tokens are taken for a claim before it runs and what the claim did not use is given back, so a
 * message's token is spent when it is claimed; with at most BURST claimed ahead, the sends seen by
 * the gateway follow the rate within one burst.
 */
import { sql } from "drizzle-orm";
import { type Executor, rowsOf } from "../db/client";

export type RateOptions = { perSecond: number; burst: number };

export type Grant = {
  /** tokens taken (messages that may be claimed now) */
  granted: number;
  /** when the next token is there, or the pause ends (epoch ms), if none was granted */
  retryAtMs: number;
  /** the shared pause (429 Retry-After) in force until then (epoch ms; 0: none) */
  pausedUntilMs: number;
};

export class SendRate {
  constructor(
    private readonly ex: Executor,
    readonly options: RateOptions,
  ) {}

  /** Takes up to `want` tokens at `now`. */
  async take(want: number, now: Date): Promise<Grant> {
    const at = now.toISOString();
    const { perSecond, burst } = this.options;
    const [row] = await rowsOf<{ granted: number; available: number; paused_ms: number | null }>(
      this.ex,
      sql`with current as (
            select least(${burst}::float8, tokens + ${perSecond}::float8 * greatest(0, extract(epoch from (${at}::timestamptz - refilled_at)))) as available,
              paused_until
            from send_rate where id = 1 for update),
          decided as (
            select available, paused_until,
              case when paused_until > ${at}::timestamptz then 0 else least(${want}::int, floor(available)::int) end as granted
            from current),
          taken as (
            update send_rate s set tokens = d.available - d.granted, refilled_at = greatest(s.refilled_at, ${at}::timestamptz)
            from decided d where s.id = 1),
          -- the row is missing after a test recycled the tables: put it back (this take grants nothing)
          restored as (
            insert into send_rate (id, tokens, refilled_at, paused_until)
            select 1, ${burst}::float8, ${at}::timestamptz, '-infinity' where not exists (select 1 from current)
            on conflict (id) do nothing)
          select granted, available::float8 as available,
            case when paused_until > ${at}::timestamptz then (extract(epoch from paused_until) * 1000)::float8 end as paused_ms
          from decided`,
    );
    const nowMs = now.getTime();
    if (!row) return { granted: 0, retryAtMs: nowMs + 10, pausedUntilMs: 0 };
    const pausedUntilMs = row.paused_ms === null ? 0 : Number(row.paused_ms);
    const missing = Math.max(0, 1 - (Number(row.available) - row.granted));
    return {
      granted: row.granted,
      retryAtMs: pausedUntilMs > nowMs ? pausedUntilMs : nowMs + Math.ceil((missing / perSecond) * 1000),
      pausedUntilMs,
    };
  }

  /** Gives back tokens a claim did not use. */
  async giveBack(count: number): Promise<void> {
    if (count <= 0) return;
    await rowsOf(this.ex, sql`update send_rate set tokens = least(${this.options.burst}::float8, tokens + ${count}::float8) where id = 1`);
  }

  /** The shared pause's end (epoch ms; 0: none): read once a tick when no rate cap takes from the row. */
  async pausedUntil(): Promise<number> {
    const [row] = await rowsOf<{ ms: number | null }>(
      this.ex,
      sql`select case when paused_until = '-infinity' then null else (extract(epoch from paused_until) * 1000)::float8 end as ms from send_rate where id = 1`,
    );
    return row?.ms == null ? 0 : Number(row.ms);
  }

  /** A gateway said 429 with Retry-After: nobody sends before `untilMs`. */
  async pause(untilMs: number): Promise<void> {
    await rowsOf(
      this.ex,
      sql`update send_rate set paused_until = greatest(paused_until, ${new Date(untilMs).toISOString()}::timestamptz) where id = 1`,
    );
  }
}
