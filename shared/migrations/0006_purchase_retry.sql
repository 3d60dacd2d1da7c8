-- A purchase whose supplier call failed transiently (no connection, timeout,
-- 5xx, rate limit) keeps its response but sets `retryable`, so that the next
-- request with the same idempotency key and body claims the row again.
alter table purchase_history
    add column if not exists retryable boolean not null default false;

-- At most one purchase of a stone calls the supplier at a time. A purchase
-- records its stone on its pending row before the call, so a concurrent
-- purchase of the same stone under another key fails at this index.
create unique index if not exists purchase_history_one_pending
    on purchase_history (diamond_id) where status = 'pending';
