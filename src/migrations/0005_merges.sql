-- 0005_merges: the record of customer merges.  When an identity links two
-- customers, the one being written survives (into_no) and the other
-- (from_no) is merged into it: its identities, events and tag memberships
-- move over, its attributes and personal data fill what the survivor
-- lacks, and its row stays with merged_into set.
CREATE TABLE customer_merges (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    from_no        TEXT NOT NULL,
    into_no        TEXT NOT NULL,
    identity_type  TEXT NOT NULL,
    at             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, from_no)
);
