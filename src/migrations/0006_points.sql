-- 0006_points: the points ledger (积分).  See docs/rewards.md.
--
-- A tenant runs several point types, each with an expiry policy.  Every
-- movement of points is one row of ledger_entries: a double entry, the
-- points move from debit_account to credit_account.  Accounts are strings:
-- 'customer:<no>', 'source:<name>' (a campaign budget, the mall, an
-- adjustment ...), 'sink:<name>' (where spent points go) and 'expired'.
-- Points a customer earns form a lot with its own expiry; spending and
-- expiring draw from lots, and lot_allocations records which lots each
-- entry drew from (or put back into).  For every customer and type:
--   point_accounts.balance = SUM(point_lots.remaining)
--                          = credits - debits of 'customer:<no>' in the journal.
-- `siyu check` verifies this and the rest of docs/rewards.md's invariants.

-- expiry: 'never'; 'days' (expiry_days: valid through the N-th day after the
-- day of earning, in the tenant's time zone); 'year_end' (expiry_years: N = 0
-- expires at the end of the year of earning, 1 the end of the next year ...).
CREATE TABLE point_types (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    code          TEXT NOT NULL,
    name          TEXT NOT NULL,
    expiry        TEXT NOT NULL CHECK (expiry IN ('never', 'days', 'year_end')),
    expiry_days   INTEGER CHECK ((expiry = 'days') = (expiry_days IS NOT NULL)),
    expiry_years  INTEGER CHECK ((expiry = 'year_end') = (expiry_years IS NOT NULL)),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

-- A customer's balance of one point type; the row appears with the first earn.
CREATE TABLE point_accounts (
    tenant_id    TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    point_type   TEXT NOT NULL,
    balance      BIGINT NOT NULL CHECK (balance >= 0),
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_no, point_type)
);

-- Points earned by one earn entry.  expires_at NULL: never expires.  Lot ids
-- increase in the order lots are made, which breaks ties between lots
-- expiring at the same moment.
CREATE TABLE point_lots (
    id           {{AUTOID}},
    tenant_id    TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    point_type   TEXT NOT NULL,
    entry_id     TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    remaining    BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL
);
-- A customer's open lots of a type, soonest expiry first (spending).
CREATE INDEX point_lots_open ON point_lots (tenant_id, customer_no, point_type, expires_at)
    WHERE remaining > 0;
-- Open lots by expiry across the tenant (the expiry job).
CREATE INDEX point_lots_expiring ON point_lots (tenant_id, expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;

-- The journal.  seq orders it (newest first in a customer's history, and the
-- history's cursor); id is the entry's public, opaque id (le_ + 16 hex).
-- customer_no and point_type name the customer account the entry moves.
-- reverses: the entry a 'reverse' entry undoes; reversed_by: the reverse
-- entry that undid this one.  idempotency_key: the client's key, unique in
-- the tenant's journal for as long as the journal exists.
CREATE TABLE ledger_entries (
    seq              {{AUTOID}},
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('earn', 'spend', 'expire', 'reverse')),
    point_type       TEXT NOT NULL,
    customer_no      TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    debit_account    TEXT NOT NULL,
    credit_account   TEXT NOT NULL CHECK (credit_account <> debit_account),
    reason           TEXT NOT NULL DEFAULT '',
    reference        TEXT NOT NULL DEFAULT '',
    operator         TEXT NOT NULL,
    idempotency_key  TEXT,
    reverses         TEXT,
    reversed_by      TEXT,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX ledger_entries_id ON ledger_entries (tenant_id, id);
CREATE INDEX ledger_entries_customer ON ledger_entries (tenant_id, customer_no, seq);
CREATE UNIQUE INDEX ledger_entries_idem ON ledger_entries (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- An entry is reversed at most once: the store refuses a second reversal.
CREATE UNIQUE INDEX ledger_entries_reverses ON ledger_entries (tenant_id, reverses)
    WHERE reverses IS NOT NULL;

-- The lots an entry drew from (spend, expire, reverse of an earn) or put
-- points into (earn, reverse of a spend).  Every entry's allocations sum to
-- its amount; a lot's remaining is what its allocations put in minus what
-- they drew.
CREATE TABLE lot_allocations (
    tenant_id  TEXT NOT NULL,
    entry_id   TEXT NOT NULL,
    lot_id     BIGINT NOT NULL,
    amount     BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (tenant_id, entry_id, lot_id)
);
CREATE INDEX lot_allocations_lot ON lot_allocations (tenant_id, lot_id);
