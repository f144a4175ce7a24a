-- 0009_rewards_pages: fewer B-tree pages written per points spend and grant.
--
-- A mall exchange writes a spend entry, its lot allocation, the lot, the
-- account, the stock and the grant in one transaction; at commit every page
-- it dirtied goes to the WAL (and later to the database file).  Ledger entry
-- ids and grant codes are now time-ordered (util.h: sy_ordered_id), so their
-- unique indexes grow at the right edge.  Two indexes each cost a random page
-- per exchange and served no request path:
--
-- * benefit_grants_limits (customer, item, day): the per-customer limits are
--   counted from the customer's grants through benefit_grants_customer,
--   which a customer's handful of grants makes as cheap;
-- * lot_allocations_lot (lot): only `siyu check` joins allocations by lot,
--   and it scans them all anyway.
--
-- Reversing an earn finds the earn's lot by its entry id: point_lots_entry
-- serves that lookup (it was a table scan), and grows at its right edge.
DROP INDEX benefit_grants_limits;
DROP INDEX lot_allocations_lot;
CREATE INDEX point_lots_entry ON point_lots (tenant_id, entry_id);
