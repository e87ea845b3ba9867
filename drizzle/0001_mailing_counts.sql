CREATE TABLE "mailing_counts" (
	"mailing_id" integer NOT NULL,
	"status" text NOT NULL,
	"shard" smallint NOT NULL,
	"n" bigint NOT NULL,
	CONSTRAINT "mailing_counts_mailing_id_status_shard_pk" PRIMARY KEY("mailing_id","status","shard")
);
