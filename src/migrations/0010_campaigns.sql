-- 0010_campaigns: the campaign engine (活动): check-in, event tasks, and the
-- rows lotteries, referrals and coupon drops will use.  See docs/campaigns.md.
--
-- A campaign is written as a draft, submitted, approved by a different key
-- than its author (maker-checker), and then runs between starts_at and
-- ends_at: status holds the last explicit state; 'running' is never stored
-- but derived (a 'scheduled' campaign inside its window runs, and a
-- scheduled or paused one past its end has ended).
--
-- Budget: spent_points and spent_cost (fen) grow with every reward, in the
-- writer's transaction, and the CHECKs below refuse any write that would
-- overspend.  Limits count campaign_actions rows of the customer.
CREATE TABLE campaigns (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    name                TEXT NOT NULL,
    type                TEXT NOT NULL CHECK (type IN ('checkin', 'task', 'lottery', 'referral',
                                                      'coupon_drop')),
    status              TEXT NOT NULL CHECK (status IN ('draft', 'pending_approval', 'scheduled',
                                                        'paused', 'ended')),
    starts_at           BIGINT NOT NULL,
    ends_at             BIGINT NOT NULL,
    -- daily open hours, minutes after the tenant's local midnight [from, until);
    -- both NULL: open all day
    open_from           INTEGER CHECK (open_from >= 0 AND open_from < 1440),
    open_until          INTEGER CHECK (open_until > 0 AND open_until <= 1440),
    segment_id          TEXT,
    -- suitability (适当性): the promoted product's risk level 1..5 (R1..R5),
    -- and how many days a customer's risk assessment stays valid
    product_risk        INTEGER CHECK (product_risk BETWEEN 1 AND 5),
    risk_validity_days  INTEGER CHECK (risk_validity_days > 0),
    holdout_percent     INTEGER NOT NULL CHECK (holdout_percent BETWEEN 0 AND 50),
    budget_points       BIGINT CHECK (budget_points >= 0),
    budget_cost         BIGINT CHECK (budget_cost >= 0),
    spent_points        BIGINT NOT NULL DEFAULT 0 CHECK (spent_points >= 0),
    spent_cost          BIGINT NOT NULL DEFAULT 0 CHECK (spent_cost >= 0),
    limit_day           INTEGER CHECK (limit_day > 0),
    limit_week          INTEGER CHECK (limit_week > 0),
    limit_total         INTEGER CHECK (limit_total > 0),
    point_type          TEXT,
    -- the type's own rules as JSON: {"checkin": {...}} or {"tasks": [...]}
    rules               TEXT NOT NULL DEFAULT '{}',
    created_by          TEXT NOT NULL,
    updated_by          TEXT NOT NULL,
    submitted_by        TEXT,
    approved_by         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    submitted_at        BIGINT,
    approved_at         BIGINT,
    PRIMARY KEY (tenant_id, id),
    CHECK (ends_at > starts_at),
    CHECK ((open_from IS NULL) = (open_until IS NULL) AND
           (open_from IS NULL OR open_from < open_until)),
    CHECK ((product_risk IS NULL) = (risk_validity_days IS NULL)),
    CHECK (budget_points IS NULL OR spent_points <= budget_points),
    CHECK (budget_cost IS NULL OR spent_cost <= budget_cost),
    CHECK (approved_by IS NULL OR (approved_by <> created_by AND approved_by <> updated_by))
);
CREATE INDEX campaigns_running ON campaigns (tenant_id, type, status, ends_at);

-- Every lifecycle step: who moved the campaign from one state to another.
CREATE TABLE campaign_transitions (
    id           {{AUTOID}},
    tenant_id    TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    action       TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    actor        TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);
CREATE INDEX campaign_transitions_campaign ON campaign_transitions (tenant_id, campaign_id, id);

-- Every participation that was accepted: a check-in, a make-up check-in, a
-- task done.  slot makes each one happen once: 'day:<d>' for the check-in of
-- business day d, 'task:<code>:<period>' for a task ('day:<d>', 'week:<w>'
-- or 'campaign').  day and week: the business day and (Monday-based) week
-- of the participation in the tenant's time zone, for the limits.
-- target_day: the day a check-in is for (a make-up's is in the past).
CREATE TABLE campaign_actions (
    tenant_id     TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    id            TEXT NOT NULL,
    customer_no   TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('checkin', 'makeup', 'task')),
    slot          TEXT NOT NULL,
    day           BIGINT NOT NULL,
    week          BIGINT NOT NULL,
    target_day    BIGINT,
    streak        INTEGER,
    task          TEXT,
    event_id      TEXT,
    points        BIGINT NOT NULL DEFAULT 0 CHECK (points >= 0),
    point_type    TEXT,
    item          TEXT,
    grant_code    TEXT,
    ledger_entry  TEXT,
    cost          BIGINT NOT NULL DEFAULT 0 CHECK (cost >= 0),
    paid_points   BIGINT NOT NULL DEFAULT 0 CHECK (paid_points >= 0),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, id)
);
CREATE UNIQUE INDEX campaign_actions_slot ON campaign_actions (tenant_id, campaign_id, customer_no,
                                                               slot);
CREATE INDEX campaign_actions_day ON campaign_actions (tenant_id, campaign_id, customer_no, day);
CREATE INDEX campaign_actions_target ON campaign_actions (tenant_id, campaign_id, customer_no,
                                                         target_day);

-- The holdout (对照组): customers of the audience that the campaign's hash
-- keeps out, recorded the first time they try to take part, so uplift can
-- be measured against them.  Membership itself is a function of the hash
-- (docs/campaigns.md) and holds whether or not a customer is recorded.
CREATE TABLE campaign_holdouts (
    tenant_id    TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    first_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, customer_no)
);
