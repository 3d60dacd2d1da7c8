-- The API searches, sorts and reports the price per carat that customers
-- pay, so `diamonds` keeps it beside the supplier's figure.

-- The supplier's price per carat, which mapping computes from the feed price
-- and the carats as the feed sends them. Re-pricing leaves it unchanged.
alter table diamonds rename column price_per_carat_cents to feed_price_per_carat_cents;

-- The retail price per carat: priced_price_cents / carats, rounded half up to
-- the cent, as (2 * price + carats) div (2 * carats) in exact numeric
-- arithmetic. PostgreSQL computes it in every statement that inserts or
-- updates a row, so consolidation and re-pricing keep it in step with the
-- priced price, and adding the column fills it for every stored stone.
-- numeric(22, 0) fits the largest bigint price over 0.001 ct, where bigint
-- would overflow at markups and carats that the other columns accept.
-- NOTE: mapping rejects carats below 0.0005, but stones stored before it did
-- may have carats 0. Their price is divided by 0.001 ct, so that no statement
-- fails on them, which understates their price per carat.
alter table diamonds add column priced_price_per_carat_cents numeric(22, 0) not null
    generated always as (
        div(2 * priced_price_cents::numeric + greatest(carats, 0.001),
            2 * greatest(carats, 0.001))
    ) stored;

-- The search index moves to the new column. A bulk load in progress may have
-- set the index aside with a definition that names the renamed column, so
-- that definition is dropped and the index is built here.
drop index if exists diamonds_api_price_per_carat;
delete from deferred_indexes where index_name = 'diamonds_api_price_per_carat';
create index diamonds_api_price_per_carat on diamonds (priced_price_per_carat_cents, id)
    where status = 'active';
