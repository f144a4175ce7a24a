-- 0014_attr_history: the history of the attributes whose movement the
-- reports follow (customer.h: SY_HISTORY_ATTRS; for now `aum`).
--
-- A row is written in the same transaction as the customer's change
-- whenever such an attribute's value changes (a new customer with a value,
-- an update, a merge that fills it, an unset: value NULL).  The value is the
-- attribute's canonical JSON text.  GET /v1/reports/kpis reads each
-- customer's value at the start and at the end of a period from it.
CREATE TABLE attr_history (
    id           {{AUTOID}},
    tenant_id    TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    attr         TEXT NOT NULL,
    value        TEXT,
    at           BIGINT NOT NULL
);
CREATE INDEX attr_history_customer ON attr_history (tenant_id, attr, customer_no, at, value);
