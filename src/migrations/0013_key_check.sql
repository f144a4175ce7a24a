-- 0013_key_check: settings of the store itself, and a covering index for
-- the coverage KPI.
--
-- store_settings holds values that belong to the database as a whole.  The
-- first is data_key_check: a keyed hash of a constant under the data key
-- that sealed this store's personal data (pii.h: sy_pii_check_store), so a
-- server started with another key refuses to start instead of failing on
-- every read of personal data.
CREATE TABLE store_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- GET /v1/reports/kpis counts the customers with an app, WeChat or WeCom
-- identity: with the customer number in the index, that is a scan of the
-- index alone.
CREATE INDEX identities_type_customer ON identities (tenant_id, type, customer_no);
