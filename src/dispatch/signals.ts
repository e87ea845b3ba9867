/**
 * How writers tell dispatchers that something changed, without waiting for the next tick (SPEC §4):
 * in-process by a direct call, across processes by PostgreSQL NOTIFY on two channels.
 */
import type { Database } from "../db/client";
import { outsideDeadline } from "../db/deadline";
import type { Logger } from "../ops/logger";

export const wakeChannel = "notification_service_wake";
export const mailingChannel = "notification_service_mailing";
export const clientChannel = "notification_service_client";

export interface Signals {
  /** Messages may be due now: claim without waiting for the tick. */
  wake(): void;
  /** A mailing was paused, cancelled, deleted or re-planned: drop claimed sends that no longer hold. */
  mailingChanged(id: number): void;
  /** Clients were deleted or changed: claimed sends check them again before going out. */
  clientChanged(): void;
}

/** What a local dispatcher listens with. */
export interface SignalListener {
  wake(): void;
  mailingChanged(id: number): void;
  clientChanged(): void;
}

/**
 * Signals to the local dispatcher (if any) and, through NOTIFY, to every other process. The local
 * dispatcher's work runs outside the calling request's database deadline (db/deadline.ts): a tick
 * a request woke is not the request's work.
 */
export function databaseSignals(database: Database, logger: Logger, localListener: () => SignalListener | null): Signals {
  const local = () => {
    const listener = localListener();
    return listener && {
      wake: () => outsideDeadline(() => listener.wake()),
      mailingChanged: (id: number) => outsideDeadline(() => listener.mailingChanged(id)),
      clientChanged: () => outsideDeadline(() => listener.clientChanged()),
    };
  };
  const notify = (channel: string, payload: string) =>
    database.notify(channel, payload).catch((error) => logger.warn("notify failed", { channel, error: String(error) }));
  return {
    wake() {
      local()?.wake();
      void notify(wakeChannel, "");
    },
    mailingChanged(id) {
      local()?.mailingChanged(id);
      void notify(mailingChannel, String(id));
    },
    clientChanged() {
      local()?.clientChanged();
      void notify(clientChannel, "");
    },
  };
}

/** Signals that go nowhere: for an app built without a dispatcher in tests. */
export const silentSignals: Signals = { wake() {}, mailingChanged() {}, clientChanged() {} };
