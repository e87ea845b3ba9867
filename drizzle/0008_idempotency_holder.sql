-- Who holds an Idempotency-Key (http/idempotency.ts): a token new at each claim and takeover, so a
-- request whose key a retry took over (its heartbeat stalled past the lease) can no longer release,
-- renew or answer the retry's hold. Rows from before this migration keep NULL: a NULL hold without
-- an answer is taken over after its lease as before; answered rows are replayed as before.
ALTER TABLE "idempotency_keys" ADD COLUMN "holder" uuid;