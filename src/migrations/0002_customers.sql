-- 0002_customers: the attribute schema, customers and their identities.
-- Tenants created from now on get the bank attribute template (attr.c);
-- tenants created before this migration start with no attributes.

-- Typed attributes per tenant.  enum_values is a JSON array whose order is
-- the enum's order (risk_level R1 < R2 < ... < R5).  number attributes are
-- exact decimals stored as integers scaled by 10^scale; unit documents what
-- an integer counts (e.g. 'fen' for money).
CREATE TABLE attributes (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    type         TEXT NOT NULL CHECK (type IN ('enum', 'integer', 'number', 'date', 'bool', 'string')),
    enum_values  TEXT,
    scale        INTEGER NOT NULL DEFAULT 0,
    unit         TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- One row per customer.  dense_id numbers a tenant's customers 0, 1, 2 ...
-- for the in-memory bitmaps.  attrs holds the canonical attribute values as
-- a JSON object.  pii holds name, phone and ID number encrypted with the
-- tenant data key (XChaCha20-Poly1305, base64); never in clear text.
CREATE TABLE customers (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    customer_no  TEXT NOT NULL,
    dense_id     BIGINT NOT NULL,
    attrs        TEXT NOT NULL DEFAULT '{}',
    pii          TEXT,
    merged_into  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_no)
);
CREATE UNIQUE INDEX customers_dense ON customers (tenant_id, dense_id);

-- Channel identities linked to a customer.  value_key is the identity's
-- value, except for phone numbers: a keyed hash, so no phone is stored in
-- clear text.
CREATE TABLE identities (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    type         TEXT NOT NULL CHECK (type IN ('app_user_id', 'wechat_openid', 'wechat_unionid',
                                               'wecom_external_userid', 'phone')),
    value_key    TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, type, value_key)
);
CREATE INDEX identities_customer ON identities (tenant_id, customer_no);
