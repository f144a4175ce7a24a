-- 0007_customer_packed: each customer's attributes once more, in a compact
-- binary form the index reads at start.  See docs/ARCHITECTURE.md, "Packed
-- attributes".
--
-- customers.attrs (JSON) stays the record of a customer's attributes: the
-- API reads and writes it.  customer_packed holds the same values for every
-- customer not merged into another, written in the same transaction, in
-- a form that takes no parsing: one entry per attribute, the attribute
-- named by its ordinal (below), the value an integer in the index's units
-- (dates as days since 1970-01-01, decimals scaled), a bool, or a string.
-- Rebuilding the index reads this table instead of parsing ten million
-- JSON objects (attr.h: sy_attr_pack, sy_attr_unpack).

-- A tenant's attributes are numbered 0, 1, 2 ... in the order they were
-- defined; a number is never reused (attributes are never deleted).
ALTER TABLE attributes ADD COLUMN ordinal INTEGER;
UPDATE attributes SET ordinal = (SELECT count(*) FROM attributes a
                                 WHERE a.tenant_id = attributes.tenant_id
                                   AND a.name < attributes.name);
CREATE UNIQUE INDEX attributes_ordinal ON attributes (tenant_id, ordinal);

CREATE TABLE customer_packed (
    tenant_id    TEXT NOT NULL,
    dense_id     BIGINT NOT NULL,
    customer_no  TEXT NOT NULL,
    attrs        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, dense_id)
);

-- Tenants whose customers were written before this table existed: the
-- server packs their attributes once, at its next start, before it builds
-- the index (customer.h: sy_customers_pack_backlog).
CREATE TABLE packing_backlog (
    tenant_id    TEXT PRIMARY KEY
);
INSERT INTO packing_backlog (tenant_id) SELECT DISTINCT tenant_id FROM customers;
