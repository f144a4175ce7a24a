-- 0020_referral_device: the same-device rule also looks across invitees.
--
-- The rule compared an invitee's device only with its inviter's; several
-- invitees bound from one device (an account farm) went unflagged.  A binding
-- whose device id another binding of the campaign already used is now held as
-- same-device too, which needs the bindings by device.
CREATE INDEX referral_bindings_device ON referral_bindings (tenant_id, campaign_id, device_id)
    WHERE device_id IS NOT NULL;
