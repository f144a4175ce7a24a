-- 0019_draw_keys: a draw keeps its Idempotency-Key for good.
--
-- The server's idempotency records replay a request's answer for 24 hours.
-- A draw that costs points must not be drawn and charged again by a client
-- retrying later than that: like grants and ledger entries, the draw now
-- keeps the key, and one key draws at most once per campaign.
ALTER TABLE lottery_draws ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX lottery_draws_idem ON lottery_draws (tenant_id, campaign_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
