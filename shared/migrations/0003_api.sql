-- REST API: HMAC replay protection, rate-limit windows, search indexes.

-- Signatures already accepted, kept a little longer than the timestamp
-- tolerance so that a replay inside the window is rejected by every process.
create table api_hmac_signatures (
    signature   text primary key,
    client_id   text not null,
    created_at  timestamptz not null default now()
);
create index api_hmac_signatures_created on api_hmac_signatures (created_at);

-- Fixed one-minute windows of request counts per client ("key:<id>" or
-- "hmac:<client id>"), shared by every instance of the app.
create table api_rate_windows (
    client_key      text not null,
    window_start    timestamptz not null,
    request_count   integer not null,
    primary key (client_key, window_start)
);

-- Search indexes. Every API search filters on status = 'active' and orders by
-- one sort column with id as the tie-breaker, which keyset pages rely on.
create index diamonds_api_price on diamonds (priced_price_cents, id)
    where status = 'active';
-- The common storefront search: one shape, a price range, a carat range,
-- sorted by price. Carats as the last key lets the scan skip stones outside
-- the carat range without reading the table.
create index diamonds_api_shape_price on diamonds (shape, priced_price_cents, id, carats)
    where status = 'active';
create index diamonds_api_carats on diamonds (carats, id) where status = 'active';
create index diamonds_api_price_per_carat on diamonds (price_per_carat_cents, id)
    where status = 'active';
create index diamonds_api_created on diamonds (created_at, id) where status = 'active';

-- Hold and purchase look-ups by stone.
create index hold_history_diamond on hold_history (diamond_id, created_at desc);
create index purchase_history_diamond on purchase_history (diamond_id);
