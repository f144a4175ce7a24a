-- 0001_foundation: tenants, API keys, idempotency records and the audit log.
-- Portable SQL (SQLite 3.40 and PostgreSQL 15).  Times are BIGINT
-- milliseconds since the Unix epoch, UTC.  {{AUTOID}} is an auto-assigned
-- integer primary key in each dialect.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A key is shown once at creation; only a keyed BLAKE2b hash of it is kept.
-- prefix is its public part, used to find the row.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    prefix      TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'app', 'analyst', 'compliance')),
    name        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

-- The stored outcome of a POST made with an Idempotency-Key, written in the
-- same transaction as the mutation itself.
CREATE TABLE idempotency (
    tenant_id     TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE audit_log (
    id          {{AUTOID}},
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    request_id  TEXT,
    detail      TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
