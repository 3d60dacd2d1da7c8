-- Raw rows waiting for consolidation are listed in a narrow table of their own.
--
-- A worker that stores a new or changed payload sets the raw row's status to
-- 'pending' and adds its id here. Consolidation claims rows by deleting their
-- ids from this table with FOR UPDATE SKIP LOCKED, which touches a 30-byte
-- row instead of locking the raw row, and finds work through this table's
-- primary key instead of a partial index on the status.
drop index raw_diamonds_nivoda_pending;
create table raw_diamonds_nivoda_pending (
    raw_id  bigint primary key
);
insert into raw_diamonds_nivoda_pending (raw_id)
select id from raw_diamonds_nivoda where status in ('pending', 'processing');

-- With no index on the status and room left on each page, marking a row done
-- is a heap-only (HOT) update: no index entry is written. A batch marks every
-- row of a page in one transaction, so a page needs room for as many new
-- row versions as it has rows. Pages written before this migration get the
-- room when the table is rewritten (VACUUM FULL).
alter table raw_diamonds_nivoda set (fillfactor = 50);

-- Search indexes set aside while a bulk load fills `diamonds`, so that they
-- are built once at the end instead of updated row by row. The definition is
-- kept here in the same transaction as the drop, so a crash cannot lose it.
create table deferred_indexes (
    index_name  text primary key,
    table_name  text not null,
    definition  text not null,
    deferred_at timestamptz not null default now()
);
