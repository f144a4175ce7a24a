-- 0023_grant_delivery_sealed: a goods grant's delivery address is personal
-- data (a name, a phone number, an address).  From this version `delivery`
-- holds it sealed with the data key, like a customer's personal data
-- (pii.h), and `delivery_masked` the masked form the API shows by default
-- (张**, 138****5678, the address's first characters).  Rows written before
-- hold the address as clear JSON text in `delivery` and no masked form;
-- the server masks them when it shows them.
ALTER TABLE benefit_grants ADD COLUMN delivery_masked TEXT;
