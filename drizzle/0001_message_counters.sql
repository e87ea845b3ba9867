-- Exact message counts per (mailing, status), maintained by statement-level triggers with
-- transition tables: one small upsert per statement, however many rows it touched (a claim of
-- 500 rows or a group commit of 2,000 results costs two or three counter rows, not 2,000).
-- Rows are upserted in (mailing_id, status) order so that two workers' statements lock counter
-- rows in the same order and cannot deadlock (one did in a 3-worker run before the ORDER BY).
-- Counts of a deleted mailing are not recreated when its messages are deleted after it.
CREATE FUNCTION message_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO mailing_counts AS c (mailing_id, status, shard, n)
      SELECT mailing_id, status, (pg_backend_pid() % 4)::smallint, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (mailing_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO mailing_counts AS c (mailing_id, status, shard, n)
      SELECT mailing_id, status, (pg_backend_pid() % 4)::smallint, sum(d) FROM (
        SELECT mailing_id, status, 1 AS d FROM new_rows
        UNION ALL
        SELECT mailing_id, status, -1 AS d FROM old_rows
      ) changes
      GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
      ON CONFLICT (mailing_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
  ELSE
    INSERT INTO mailing_counts AS c (mailing_id, status, shard, n)
      SELECT o.mailing_id, o.status, (pg_backend_pid() % 4)::smallint, -count(*) FROM old_rows o
      WHERE EXISTS (SELECT 1 FROM mailings m WHERE m.id = o.mailing_id)
      GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (mailing_id, status, shard) DO UPDATE SET n = c.n + excluded.n;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION message_counts_apply();
--> statement-breakpoint
CREATE TRIGGER messages_count_update AFTER UPDATE ON messages
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION message_counts_apply();
--> statement-breakpoint
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION message_counts_apply();
--> statement-breakpoint
CREATE FUNCTION mailing_counts_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM mailing_counts c USING old_rows o WHERE c.mailing_id = o.id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER mailings_forget_counts AFTER DELETE ON mailings
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailing_counts_forget();
--> statement-breakpoint
INSERT INTO mailing_counts (mailing_id, status, shard, n)
  SELECT mailing_id, status, 0, count(*) FROM messages GROUP BY 1, 2;
