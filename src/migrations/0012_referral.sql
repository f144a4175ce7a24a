-- 0012_referral: referral fission (裂变), the offers API's campaign priority
-- and per-customer lookups.  See docs/campaigns.md.
--
-- A campaign's priority ranks it in GET /v1/customers/{no}/offers (higher
-- first, then the soonest-ending).
ALTER TABLE campaigns ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

-- The offers API reads one customer's participations in every campaign at
-- once: by customer first.
CREATE INDEX campaign_actions_customer ON campaign_actions (tenant_id, customer_no, campaign_id);

-- Invite codes: one per inviter and referral campaign, made on demand, and
-- kept (a code never changes).  code: 10 characters from a random 50 bits.
-- device_id: the inviter's device when the code was asked for (the
-- same-device fraud rule compares the invitee's with it).
CREATE TABLE referral_codes (
    tenant_id    TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    code         TEXT NOT NULL,
    device_id    TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, customer_no)
);
CREATE UNIQUE INDEX referral_codes_code ON referral_codes (tenant_id, campaign_id, code);

-- Bindings: an invitee bound to an inviter by a code; one per invitee and
-- campaign (the first valid code wins).  status:
--   bound      waiting for the qualifying event until qualify_by;
--   held       qualified, but a fraud rule holds the rewards for review
--              (hold_reason); approve pays them, reject refuses them;
--   rewarded   qualified and paid (what was paid: referral_rewards);
--   refused    qualified, nothing paid (refusal: its reason code);
--   rejected   held and rejected by a reviewer;
--   expired    the qualifying event came after qualify_by.
-- flags: the fraud rules the binding tripped when it was made
-- (comma-separated: same-device, ip-burst, phone-prefix-burst).
CREATE TABLE referral_bindings (
    tenant_id     TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    invitee       TEXT NOT NULL,
    inviter       TEXT NOT NULL,
    code          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('bound', 'held', 'rewarded', 'refused',
                                                  'rejected', 'expired')),
    device_id     TEXT,
    ip            TEXT,
    phone_prefix  TEXT,
    flags         TEXT NOT NULL DEFAULT '',
    bound_at      BIGINT NOT NULL,
    bound_day     BIGINT NOT NULL,
    qualify_by    BIGINT NOT NULL,
    event_id      TEXT,
    qualified_at  BIGINT,
    refusal       TEXT,
    reviewed_by   TEXT,
    reviewed_at   BIGINT,
    review_note   TEXT,
    PRIMARY KEY (tenant_id, campaign_id, invitee)
);
CREATE INDEX referral_bindings_inviter ON referral_bindings (tenant_id, inviter, campaign_id);
CREATE INDEX referral_bindings_ip ON referral_bindings (tenant_id, campaign_id, ip, bound_at);
CREATE INDEX referral_bindings_prefix ON referral_bindings (tenant_id, campaign_id, phone_prefix,
                                                            bound_at);
CREATE INDEX referral_bindings_status ON referral_bindings (tenant_id, campaign_id, status,
                                                            bound_at);

-- What a referral paid: one row per recipient (role inviter or invitee) of
-- a binding, with the points or item and what it cost the budget.  day: the
-- business day it was paid, for the campaign report.
CREATE TABLE referral_rewards (
    tenant_id     TEXT NOT NULL,
    campaign_id   TEXT NOT NULL,
    id            TEXT NOT NULL,
    invitee       TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('inviter', 'invitee')),
    customer_no   TEXT NOT NULL,
    points        BIGINT NOT NULL DEFAULT 0 CHECK (points >= 0),
    point_type    TEXT,
    item          TEXT,
    grant_code    TEXT,
    ledger_entry  TEXT,
    cost          BIGINT NOT NULL DEFAULT 0 CHECK (cost >= 0),
    day           BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, id)
);
CREATE UNIQUE INDEX referral_rewards_once ON referral_rewards (tenant_id, campaign_id, invitee,
                                                               role);
CREATE INDEX referral_rewards_day ON referral_rewards (tenant_id, campaign_id, day);
-- The offers API counts an inviter's paid invites by customer.
CREATE INDEX referral_rewards_customer ON referral_rewards (tenant_id, customer_no, campaign_id);
