-- 0003_events: customers' behaviour events.
-- event_id is the sender's id, unique per tenant: a repeated event is a
-- duplicate, not a second event.  ts is when it happened (ms, UTC);
-- dwell_ms how long the customer stayed, when the event is a page view.
CREATE TABLE events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    event_id     TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    name         TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    dwell_ms     BIGINT,
    props        TEXT,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
-- The customer's timeline, newest first.
CREATE INDEX events_timeline ON events (tenant_id, customer_no, ts, event_id);
