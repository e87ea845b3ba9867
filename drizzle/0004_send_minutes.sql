CREATE TABLE "send_minutes" (
	"mailing_id" integer NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"shard" smallint NOT NULL,
	"n" bigint NOT NULL,
	CONSTRAINT "send_minutes_mailing_id_minute_shard_pk" PRIMARY KEY("mailing_id","minute","shard")
);
--> statement-breakpoint
CREATE INDEX "send_minutes_minute_idx" ON "send_minutes" USING btree ("minute");--> statement-breakpoint
-- Sends per mailing and minute, kept like mailing_counts (0001): one statement-level trigger per
-- UPDATE of messages, one small upsert per statement. A row counts in the minute of its sent_at
-- while the gateway has accepted it (`sent`, and later `delivered` or `undelivered` by a receipt): +1 from the new rows, -1 from the old ones, so a statement that
-- touches an already sent row without changing it nets zero. Upserted in key order (no deadlock
-- between workers), sharded by backend like mailing_counts.
CREATE FUNCTION send_minutes_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO send_minutes AS c (mailing_id, minute, shard, n)
    SELECT mailing_id, minute, (pg_backend_pid() % 4)::smallint, sum(d) FROM (
      SELECT mailing_id, date_trunc('minute', sent_at) AS minute, 1 AS d FROM new_rows WHERE status IN ('sent', 'delivered', 'undelivered') AND sent_at IS NOT NULL
      UNION ALL
      SELECT mailing_id, date_trunc('minute', sent_at), -1 FROM old_rows WHERE status IN ('sent', 'delivered', 'undelivered') AND sent_at IS NOT NULL
    ) changes
    GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
    ON CONFLICT (mailing_id, minute, shard) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER messages_send_minutes AFTER UPDATE ON messages
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION send_minutes_apply();
--> statement-breakpoint
CREATE FUNCTION send_minutes_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM send_minutes c USING old_rows o WHERE c.mailing_id = o.id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER mailings_forget_send_minutes AFTER DELETE ON mailings
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION send_minutes_forget();
--> statement-breakpoint
INSERT INTO send_minutes (mailing_id, minute, shard, n)
  SELECT mailing_id, date_trunc('minute', sent_at), 0, count(*) FROM messages
  WHERE status IN ('sent', 'delivered', 'undelivered') AND sent_at IS NOT NULL GROUP BY 1, 2;
