-- 0011_lottery: lotteries (抽奖) for campaigns of type 'lottery', and the
-- tenant's anti-abuse (薅羊毛) rules and blocklist.  See docs/campaigns.md.
--
-- The prize table is versioned: every change (PUT /v1/campaigns/{id}/prizes)
-- writes a new version with its own rows; the newest is the one draws use,
-- and every draw records the version it was drawn against, so it can be
-- explained later from exactly that table.
CREATE TABLE lottery_versions (
    tenant_id        TEXT NOT NULL,
    campaign_id      TEXT NOT NULL,
    version          INTEGER NOT NULL CHECK (version > 0),
    -- a draw beyond the free chances costs cost_points of cost_type (NULL: none)
    cost_points      BIGINT NOT NULL DEFAULT 0 CHECK (cost_points >= 0),
    cost_type        TEXT,
    free_per_day     INTEGER NOT NULL DEFAULT 0 CHECK (free_per_day >= 0),
    draws_per_day    INTEGER CHECK (draws_per_day > 0),
    thanks_weight    BIGINT NOT NULL CHECK (thanks_weight >= 0),
    thanks_name      TEXT NOT NULL,
    -- pacing: business day pace_from .. pace_until (tenant's zone) each
    -- release their share of each prize's stock; unused stock carries over
    pacing           INTEGER NOT NULL CHECK (pacing IN (0, 1)),
    pace_from        BIGINT NOT NULL,
    pace_until       BIGINT NOT NULL CHECK (pace_until >= pace_from),
    -- after guarantee_after losing draws in a row the next one wins
    -- guarantee_prize when it has stock
    guarantee_after  INTEGER CHECK (guarantee_after > 0),
    guarantee_prize  TEXT,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, version),
    CHECK ((cost_points = 0) = (cost_type IS NULL)),
    CHECK ((guarantee_after IS NULL) = (guarantee_prize IS NULL))
);

-- A version's prizes, in table order (position): the weights' ranges follow
-- that order, then the thanks outcome.  used: units drawn from this
-- version's stock; the CHECK refuses any write past it.
CREATE TABLE lottery_prizes (
    tenant_id    TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    code         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    weight       BIGINT NOT NULL CHECK (weight > 0),
    stock        BIGINT NOT NULL CHECK (stock >= 0),
    used         BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= stock),
    points       BIGINT NOT NULL DEFAULT 0 CHECK (points >= 0),
    point_type   TEXT,
    item         TEXT,
    PRIMARY KEY (tenant_id, campaign_id, version, code),
    CHECK ((points > 0) <> (item IS NOT NULL))
);

-- Every draw: who, when (business day), against which version, the random
-- value and the total weight it was drawn from, the range it fell in
-- (picked: a prize code, NULL for thanks), the outcome (prize: the code
-- awarded, NULL for thanks) and why it differs from the pick (reason:
-- guarantee, paced, out-of-stock, or the catalogue's refusal), what it cost
-- (free, or cost_points spent by spend_entry) and what it issued (points by
-- ledger_entry, or item by grant_code, with budget_cost in fen).  n counts
-- the customer's draws in the campaign (1, 2, ...), day_n their draws on
-- that business day (so the daily cap needs no count); losing_streak:
-- losing draws in a row up to and including this one.
CREATE TABLE lottery_draws (
    tenant_id      TEXT NOT NULL,
    campaign_id    TEXT NOT NULL,
    id             TEXT NOT NULL,
    customer_no    TEXT NOT NULL,
    n              INTEGER NOT NULL CHECK (n > 0),
    day_n          INTEGER NOT NULL CHECK (day_n > 0 AND day_n <= n),
    version        INTEGER NOT NULL,
    day            BIGINT NOT NULL,
    week           BIGINT NOT NULL,
    random         BIGINT NOT NULL CHECK (random >= 0),
    total_weight   BIGINT NOT NULL CHECK (total_weight > random),
    picked         TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('prize', 'thanks')),
    prize          TEXT,
    reason         TEXT,
    free           INTEGER NOT NULL CHECK (free IN (0, 1)),
    cost_points    BIGINT NOT NULL DEFAULT 0 CHECK (cost_points >= 0),
    cost_type      TEXT,
    spend_entry    TEXT,
    points         BIGINT NOT NULL DEFAULT 0 CHECK (points >= 0),
    point_type     TEXT,
    item           TEXT,
    grant_code     TEXT,
    ledger_entry   TEXT,
    budget_cost    BIGINT NOT NULL DEFAULT 0 CHECK (budget_cost >= 0),
    losing_streak  INTEGER NOT NULL CHECK (losing_streak >= 0),
    device_id      TEXT,
    ip             TEXT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, id),
    CHECK ((outcome = 'prize') = (prize IS NOT NULL)),
    CHECK ((cost_points > 0) = (spend_entry IS NOT NULL))
);
CREATE UNIQUE INDEX lottery_draws_n ON lottery_draws (tenant_id, campaign_id, customer_no, n);
CREATE INDEX lottery_draws_day ON lottery_draws (tenant_id, campaign_id, customer_no, day);
CREATE INDEX lottery_draws_prize ON lottery_draws (tenant_id, campaign_id, version, prize);

-- Anti-abuse: the tenant's rules (rate limits, velocity rules, trusted
-- proxies) as one JSON object; absent: no rules.
CREATE TABLE abuse_rules (
    tenant_id   TEXT NOT NULL PRIMARY KEY,
    rules       TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The blocklist: customers, device ids and IP addresses refused on check-in
-- and draws; expires_at NULL: until removed.
CREATE TABLE abuse_blocklist (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('customer', 'device', 'ip')),
    value       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    expires_at  BIGINT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);
