-- 0022_idempotency_reply: an idempotency record keeps its answer's content
-- type and Location header, so that a replay is the answer first sent (a
-- refusal that committed something, such as a holdout, stays a problem;
-- a 201 keeps its Location).  Older records have neither: a replay then
-- takes a status of 400 or above for a problem.
ALTER TABLE idempotency ADD COLUMN content_type TEXT;
ALTER TABLE idempotency ADD COLUMN location TEXT;
