-- 0015_timed_events: which event names the in-memory index times.
-- For these names the index keeps every event's time of day and dwell
-- time (about 4 bytes an event, 8 with a dwell time), which funnels and dwell
-- percentiles are computed from (docs/reports.md).  A JSON array of event
-- names, or ["*"] for every name (the default).
ALTER TABLE tenants ADD COLUMN timed_events TEXT NOT NULL DEFAULT '["*"]';
