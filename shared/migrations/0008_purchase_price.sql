-- The retail price of the stone when its purchase reserved it, so that an
-- order keeps the amount it was placed at after later re-pricing. Purchases
-- recorded before this column existed keep null.
alter table purchase_history add column if not exists price_cents bigint;
