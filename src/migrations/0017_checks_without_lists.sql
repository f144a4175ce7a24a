-- 0017_checks_without_lists: the CHECKs of the two tables every mall exchange
-- and lottery draw inserts into, spelled without IN lists.
--
-- SQLite evaluates `col IN ('a', 'b', 'c')` with three or more constants by
-- building a temporary B-tree of the list, and does so again for every row a
-- statement inserts: four such trees per mall exchange (ledger_entries.kind;
-- benefit_grants.status, source and fulfilment), about a quarter of the
-- writer's instructions per exchange (callgrind: 450 K -> 331 K, see
-- docs/benchmarks.md).  The same rule as a chain of `=` ... `OR` is a few
-- comparisons and accepts and refuses exactly the same values (a NULL
-- fulfilment passes, as it did).  SQLite cannot change a table's CHECK in
-- place, so both tables are rebuilt: same columns in the same order, same
-- rows with the same seq, same indexes under the same names.
--
-- PostgreSQL: the copy keeps each row's seq; an identity column's sequence
-- does not follow explicit values, so a PostgreSQL store holding rows of these
-- tables would need its two sequences restarted past MAX(seq) after this
-- migration.  No PostgreSQL store exists yet (scripts/pg-compat.sh applies the
-- migrations to an empty database, where there is nothing to restart).

CREATE TABLE ledger_entries_0017 (
    seq              {{AUTOID}},
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind = 'earn' OR kind = 'spend' OR kind = 'expire'
                                          OR kind = 'reverse'),
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
INSERT INTO ledger_entries_0017 (seq, tenant_id, id, kind, point_type, customer_no, amount,
    debit_account, credit_account, reason, reference, operator, idempotency_key, reverses,
    reversed_by, created_at)
SELECT seq, tenant_id, id, kind, point_type, customer_no, amount, debit_account,
    credit_account, reason, reference, operator, idempotency_key, reverses, reversed_by,
    created_at
FROM ledger_entries ORDER BY seq;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_0017 RENAME TO ledger_entries;
CREATE UNIQUE INDEX ledger_entries_id ON ledger_entries (tenant_id, id);
CREATE INDEX ledger_entries_customer ON ledger_entries (tenant_id, customer_no, seq);
CREATE UNIQUE INDEX ledger_entries_idem ON ledger_entries (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX ledger_entries_reverses ON ledger_entries (tenant_id, reverses)
    WHERE reverses IS NOT NULL;

CREATE TABLE benefit_grants_0017 (
    seq                {{AUTOID}},
    tenant_id          TEXT NOT NULL,
    code               TEXT NOT NULL,
    item               TEXT NOT NULL,
    customer_no        TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status = 'issued' OR status = 'redeemed'
                                            OR status = 'expired' OR status = 'revoked'),
    source             TEXT NOT NULL CHECK (source = 'api' OR source = 'package'
                                            OR source = 'mall'),
    package            TEXT,
    listing            TEXT,
    point_type         TEXT,
    points             BIGINT,
    spend_entry        TEXT,
    voucher_code       TEXT,
    face_value         BIGINT NOT NULL,
    cost_price         BIGINT NOT NULL,
    delivery           TEXT,
    fulfilment         TEXT CHECK (fulfilment = 'pending' OR fulfilment = 'shipped'
                                   OR fulfilment = 'delivered'),
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
INSERT INTO benefit_grants_0017 (seq, tenant_id, code, item, customer_no, status, source,
    package, listing, point_type, points, spend_entry, voucher_code, face_value, cost_price,
    delivery, fulfilment, tracking, stock_returned, day, month, issued_at, expires_at,
    redeemed_at, redeem_reference, expired_at, revoked_at, revoke_reason, operator,
    idempotency_key, updated_at)
SELECT seq, tenant_id, code, item, customer_no, status, source, package, listing, point_type,
    points, spend_entry, voucher_code, face_value, cost_price, delivery, fulfilment, tracking,
    stock_returned, day, month, issued_at, expires_at, redeemed_at, redeem_reference,
    expired_at, revoked_at, revoke_reason, operator, idempotency_key, updated_at
FROM benefit_grants ORDER BY seq;
DROP TABLE benefit_grants;
ALTER TABLE benefit_grants_0017 RENAME TO benefit_grants;
CREATE UNIQUE INDEX benefit_grants_code ON benefit_grants (tenant_id, code);
CREATE INDEX benefit_grants_customer ON benefit_grants (tenant_id, customer_no, seq);
CREATE INDEX benefit_grants_idem ON benefit_grants (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX benefit_grants_expiring ON benefit_grants (tenant_id, expires_at)
    WHERE status = 'issued' AND expires_at IS NOT NULL;
CREATE INDEX benefit_grants_item ON benefit_grants (tenant_id, item, issued_at);
