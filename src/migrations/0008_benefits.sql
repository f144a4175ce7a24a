-- 0008_benefits: the benefits catalogue (权益库), grants, the points mall
-- (积分商城).  See docs/rewards.md.
--
-- Suppliers provide items of four kinds (coupon, voucher, goods, financial).
-- An item has a total stock and what remains of it; issuing it to a customer
-- makes a grant and takes one unit.  A voucher item's stock is its code pool:
-- each code in benefit_codes is issued at most once (grant_code names the
-- grant that took it).  Every change of an item's total stock is a row of
-- benefit_stock_moves.  For every item:
--   total_stock = SUM(benefit_stock_moves.delta)
--               = remaining + grants that took stock and did not give it back.
-- `siyu check` verifies this and the rest of docs/rewards.md's invariants.

CREATE TABLE benefit_suppliers (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    contact     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

-- Money in fen.  limit_*: most grants per customer per business day, month
-- and ever (NULL: no limit); available_from/until: when it can be issued
-- (NULL: open); validity_days: a grant is valid through the N-th business day
-- after the day it was issued (NULL: until redeemed or revoked).  segment_id
-- or segment_expression (at most one): who is eligible (both NULL: everyone).
-- params: the kind's own parameters as JSON (a coupon's amount and
-- threshold, a financial right's rate discount ...).
CREATE TABLE benefit_items (
    tenant_id             TEXT NOT NULL,
    code                  TEXT NOT NULL,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('coupon', 'voucher', 'goods', 'financial')),
    supplier              TEXT NOT NULL,
    face_value            BIGINT NOT NULL CHECK (face_value >= 0),
    cost_price            BIGINT NOT NULL CHECK (cost_price >= 0),
    params                TEXT NOT NULL DEFAULT '{}',
    total_stock           BIGINT NOT NULL CHECK (total_stock >= 0),
    remaining             BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= total_stock),
    limit_day             INTEGER CHECK (limit_day > 0),
    limit_month           INTEGER CHECK (limit_month > 0),
    limit_total           INTEGER CHECK (limit_total > 0),
    available_from        BIGINT,
    available_until       BIGINT,
    validity_days         INTEGER CHECK (validity_days >= 0),
    segment_id            TEXT,
    segment_expression    TEXT,
    revoke_returns_stock  INTEGER NOT NULL CHECK (revoke_returns_stock IN (0, 1)),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code),
    CHECK (segment_id IS NULL OR segment_expression IS NULL),
    CHECK (kind <> 'voucher' OR revoke_returns_stock = 0)
);
CREATE INDEX benefit_items_supplier ON benefit_items (tenant_id, supplier);

-- The journal of stock: the initial stock, additions, uploaded voucher codes.
CREATE TABLE benefit_stock_moves (
    id          {{AUTOID}},
    tenant_id   TEXT NOT NULL,
    item        TEXT NOT NULL,
    delta       BIGINT NOT NULL CHECK (delta > 0),
    reason      TEXT NOT NULL,
    operator    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX benefit_stock_moves_item ON benefit_stock_moves (tenant_id, item, id);

-- A voucher item's code pool.  grant_code: the grant that took the code
-- (NULL: not issued).  A code is never put back: it was shown to a customer.
CREATE TABLE benefit_codes (
    id          {{AUTOID}},
    tenant_id   TEXT NOT NULL,
    item        TEXT NOT NULL,
    code        TEXT NOT NULL,
    grant_code  TEXT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX benefit_codes_code ON benefit_codes (tenant_id, item, code);
CREATE UNIQUE INDEX benefit_codes_grant ON benefit_codes (tenant_id, grant_code)
    WHERE grant_code IS NOT NULL;
-- The next free code of an item, oldest upload first.
CREATE INDEX benefit_codes_free ON benefit_codes (tenant_id, item, id) WHERE grant_code IS NULL;

CREATE TABLE benefit_packages (
    tenant_id           TEXT NOT NULL,
    code                TEXT NOT NULL,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    segment_id          TEXT,
    segment_expression  TEXT,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code),
    CHECK (segment_id IS NULL OR segment_expression IS NULL)
);
CREATE TABLE benefit_package_items (
    tenant_id  TEXT NOT NULL,
    package    TEXT NOT NULL,
    item       TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    PRIMARY KEY (tenant_id, package, item)
);

-- A points-mall listing: an item offered for `price` points of point_type,
-- with its own per-customer limits and eligibility on top of the item's.
CREATE TABLE mall_listings (
    tenant_id           TEXT NOT NULL,
    code                TEXT NOT NULL,
    item                TEXT NOT NULL,
    title               TEXT NOT NULL,
    point_type          TEXT NOT NULL,
    price               BIGINT NOT NULL CHECK (price > 0),
    limit_day           INTEGER CHECK (limit_day > 0),
    limit_month         INTEGER CHECK (limit_month > 0),
    limit_total         INTEGER CHECK (limit_total > 0),
    segment_id          TEXT,
    segment_expression  TEXT,
    active              INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code),
    CHECK (segment_id IS NULL OR segment_expression IS NULL)
);

-- One benefit issued to one customer.  code: public, opaque (g_ + 16 hex).
-- seq orders a customer's grants (newest first, the list's cursor).
-- status: issued -> redeemed | expired | revoked.  day and month: the
-- business day (days since 1970-01-01) and month (year * 12 + month - 1) of
-- issue in the tenant's time zone, for the per-customer limits.
-- source: 'api' (issued directly), 'package', 'mall' (an exchange: listing,
-- point_type, points and spend_entry, the ledger entry that paid for it).
-- stock_returned: 1 when a revoke gave the unit back to the item's stock.
-- fulfilment (goods only): pending -> shipped -> delivered (= redeemed).
CREATE TABLE benefit_grants (
    seq                {{AUTOID}},
    tenant_id          TEXT NOT NULL,
    code               TEXT NOT NULL,
    item               TEXT NOT NULL,
    customer_no        TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('issued', 'redeemed', 'expired', 'revoked')),
    source             TEXT NOT NULL CHECK (source IN ('api', 'package', 'mall')),
    package            TEXT,
    listing            TEXT,
    point_type         TEXT,
    points             BIGINT,
    spend_entry        TEXT,
    voucher_code       TEXT,
    face_value         BIGINT NOT NULL,
    cost_price         BIGINT NOT NULL,
    delivery           TEXT,
    fulfilment         TEXT CHECK (fulfilment IN ('pending', 'shipped', 'delivered')),
    tracking           TEXT,
    stock_returned     INTEGER NOT NULL DEFAULT 0 CHECK (stock_returned IN (0, 1)),
    day                BIGINT NOT NULL,
    month              BIGINT NOT NULL,
    issued_at          BIGINT NOT NULL,
    expires_at         BIGINT,
    redeemed_at        BIGINT,
    redeem_reference   TEXT,
    expired_at         BIGINT,
    revoked_at         BIGINT,
    revoke_reason      TEXT,
    operator           TEXT NOT NULL,
    idempotency_key    TEXT,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX benefit_grants_code ON benefit_grants (tenant_id, code);
CREATE INDEX benefit_grants_customer ON benefit_grants (tenant_id, customer_no, seq);
-- The per-customer limits: a customer's grants of one item.
CREATE INDEX benefit_grants_limits ON benefit_grants (tenant_id, customer_no, item, day);
-- A key issues once, for as long as the grants exist (a package's grants
-- share their request's key: the index names the first of them).
CREATE INDEX benefit_grants_idem ON benefit_grants (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX benefit_grants_expiring ON benefit_grants (tenant_id, expires_at)
    WHERE status = 'issued' AND expires_at IS NOT NULL;
CREATE INDEX benefit_grants_item ON benefit_grants (tenant_id, item, issued_at);
