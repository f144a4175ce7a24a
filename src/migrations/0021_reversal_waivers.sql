-- 0021_reversal_waivers: reversals of campaign entries made before they were refused.
--
-- Since this version the reversal API refuses an entry the campaign engine
-- wrote for one of its records (a reward, a make-up's or draw's cost, a prize,
-- a referral reward), and `siyu check` reports such a reversal.  Reversals
-- made before were allowed: they are recorded here, once, so that the check
-- names them as waived instead of failing forever on a store that upgraded.
CREATE TABLE ledger_reversal_waivers (
    tenant_id   TEXT NOT NULL,
    entry_id    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, entry_id)
);
INSERT INTO ledger_reversal_waivers (tenant_id, entry_id, reason)
SELECT e.tenant_id, e.id, 'reversed before campaign entries were protected (migration 0021)'
FROM (SELECT o.tenant_id, o.id, o.reference,
             CASE WHEN o.credit_account LIKE 'sink:campaign:%' THEN substr(o.credit_account, 15)
                  ELSE substr(o.debit_account, 17) END AS campaign_id
      FROM ledger_entries r JOIN ledger_entries o ON o.tenant_id = r.tenant_id AND o.id = r.reverses
      WHERE r.reverses IS NOT NULL
        AND (o.credit_account LIKE 'sink:campaign:%' OR o.debit_account LIKE 'source:campaign:%')) e
WHERE EXISTS (SELECT 1 FROM campaign_actions a WHERE a.tenant_id = e.tenant_id
                AND a.campaign_id = e.campaign_id AND a.id = e.reference)
   OR EXISTS (SELECT 1 FROM lottery_draws d WHERE d.tenant_id = e.tenant_id
                AND d.campaign_id = e.campaign_id AND d.id = e.reference)
   OR EXISTS (SELECT 1 FROM referral_rewards rr WHERE rr.tenant_id = e.tenant_id
                AND rr.campaign_id = e.campaign_id AND rr.id = e.reference);
