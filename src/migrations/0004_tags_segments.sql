-- 0004_tags_segments: the tag catalogue, manual tag members, saved segments
-- and their size history.

-- A tag is manual (members added and removed explicitly) or a rule (its
-- members are whoever matches a segment expression, always current).
CREATE TABLE tags (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    category     TEXT NOT NULL CHECK (category IN ('basic', 'behaviour', 'preference', 'value')),
    kind         TEXT NOT NULL CHECK (kind IN ('manual', 'rule')),
    expression   TEXT,
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE tag_members (
    tenant_id    TEXT NOT NULL,
    tag          TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    added_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, tag, customer_no)
);

CREATE TABLE segments (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    expression   TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One row per segment and business day: its size when last measured that day.
CREATE TABLE segment_sizes (
    tenant_id    TEXT NOT NULL,
    segment_id   TEXT NOT NULL,
    day          TEXT NOT NULL,
    size         BIGINT NOT NULL,
    measured_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, day)
);
