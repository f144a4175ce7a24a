-- 0018_lots_closed: a lot's place in the open-lot indexes no longer moves
-- with every spend.
--
-- point_lots_open and point_lots_expiring held the lots WHERE remaining > 0.
-- SQLite rewrites a partial index's entry whenever an UPDATE sets a column its
-- WHERE names, even when the entry stays the same: every spend that drew from
-- a lot deleted and re-inserted the lot's entry in both indexes (two random
-- pages per spend, about 17 K instructions each).  The indexes now hold the
-- lots WHERE closed = 0, and closed is set only by the draw that empties a lot
-- (and cleared by a reversal that puts points back): for every lot
-- closed = 1 exactly when remaining = 0 (`siyu check` verifies it).  Queries
-- for open lots say both closed = 0 and remaining > 0.
ALTER TABLE point_lots ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;
UPDATE point_lots SET closed = 1 WHERE remaining = 0;
DROP INDEX point_lots_open;
DROP INDEX point_lots_expiring;
-- A customer's open lots of a type, soonest expiry first (spending).
CREATE INDEX point_lots_open ON point_lots (tenant_id, customer_no, point_type, expires_at)
    WHERE closed = 0;
-- Open lots by expiry across the tenant (the expiry job).
CREATE INDEX point_lots_expiring ON point_lots (tenant_id, expires_at)
    WHERE closed = 0 AND expires_at IS NOT NULL;
