-- 0016_coupon_drop: coupon drops (限时抢券) for campaigns of type
-- 'coupon_drop', and the review deadline of held referral rewards.  See
-- docs/campaigns.md.
--
-- A coupon drop releases quantity units of a catalogue item in waves at
-- fixed local times of every business day.  A wave's row is written by
-- its first claim (released: the units it released); claimed counts the
-- claims taken from it, and the CHECK refuses any write past released, so
-- a wave is never oversold whatever the code above it does.
CREATE TABLE coupon_waves (
    tenant_id    TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    day          BIGINT NOT NULL,
    wave         INTEGER NOT NULL CHECK (wave >= 0),
    opens_at     BIGINT NOT NULL,
    released     BIGINT NOT NULL CHECK (released > 0),
    claimed      BIGINT NOT NULL DEFAULT 0 CHECK (claimed >= 0 AND claimed <= released),
    PRIMARY KEY (tenant_id, campaign_id, day, wave)
);

-- Every claim: who, in which wave (business day and the wave's position
-- in the day), the grant it issued and its cost price (fen, counted in the
-- campaign's budget), and where it came from.  wave_n numbers the
-- customer's claims in that wave (1, 2, ...), so a retry that slipped past
-- the idempotency record cannot take a second unit beyond per_wave.
CREATE TABLE coupon_claims (
    tenant_id    TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    id           TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    day          BIGINT NOT NULL,
    week         BIGINT NOT NULL,
    wave         INTEGER NOT NULL,
    wave_n       INTEGER NOT NULL CHECK (wave_n > 0),
    item         TEXT NOT NULL,
    grant_code   TEXT NOT NULL,
    cost         BIGINT NOT NULL DEFAULT 0 CHECK (cost >= 0),
    device_id    TEXT,
    ip           TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, id)
);
CREATE UNIQUE INDEX coupon_claims_once ON coupon_claims (tenant_id, campaign_id, customer_no, day,
                                                         wave, wave_n);
CREATE INDEX coupon_claims_wave ON coupon_claims (tenant_id, campaign_id, day, wave);
-- The offers API reads one customer's claims in every campaign at once.
CREATE INDEX coupon_claims_customer ON coupon_claims (tenant_id, customer_no, campaign_id, day);

-- Held referral rewards wait for review until hold_days (the campaign's
-- referral section) after they were held; the maintenance loop, POST
-- /v1/campaigns/{id}/referrals:expire and the review itself then expire
-- them (status 'expired', refusal 'review-expired').  review_by: that
-- deadline, set when a binding is held.  The expiry reads a campaign's held
-- bindings through referral_bindings_status (0012).
ALTER TABLE referral_bindings ADD COLUMN review_by BIGINT;
