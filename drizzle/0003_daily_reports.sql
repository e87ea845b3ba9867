-- One row per report day (issue 13, item 3): the replica whose insert wins sends the daily report;
-- the others find the row (ON CONFLICT DO NOTHING) and skip. A failed send deletes its row again.
CREATE TABLE IF NOT EXISTS "daily_reports" (
	"day" date PRIMARY KEY NOT NULL,
	"claimed_at" timestamp with time zone DEFAULT now() NOT NULL
);
