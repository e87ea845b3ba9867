/** A view of a database whose statements fail (or report their end) on demand: "the database went away". */
import type { SQL } from "drizzle-orm";
import type { Database } from "../../src/db/client";

export type FaultControl = {
  /** statements whose SQL text this returns true for fail with a connection error */
  fails: (text: string) => boolean;
  /** called once a statement whose text it returns true for has finished (`after`) */
  watch: (text: string) => boolean;
  after: () => void;
};

/** The SQL text of a Drizzle `sql` query, parameters left out. */
export function sqlText(query: unknown): string {
  const chunks = (query as { queryChunks?: unknown[] })?.queryChunks ?? [];
  return chunks
    .map((chunk) => {
      const value = (chunk as { value?: unknown })?.value;
      if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join("");
      return (chunk as { queryChunks?: unknown })?.queryChunks ? sqlText(chunk) : " ";
    })
    .join("");
}

export function faultyDatabase(database: Database): { database: Database; control: FaultControl } {
  const control: FaultControl = { fails: () => false, watch: () => false, after: () => {} };
  const db = new Proxy(database.db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return (query: SQL) => {
        const text = sqlText(query);
        // As postgres.js reports a refused connection: the socket error's code travels with it.
        if (control.fails(text)) return Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432 (test)"), { code: "ECONNREFUSED" }));
        const result = Promise.resolve(target.execute(query));
        if (control.watch(text)) result.then(() => control.after(), () => {});
        return result;
      };
    },
  });
  return { database: { ...database, db } as Database, control };
}
