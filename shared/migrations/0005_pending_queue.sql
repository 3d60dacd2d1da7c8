-- Raw rows waiting for consolidation live in a narrow table of their own.
--
-- Before, each raw row carried a status that consolidation rewrote to 'done':
-- a second write of every raw row (with its indexes) and a row lock to claim
-- it. Now a worker that stores a new or changed payload adds its row id here,
-- and consolidation claims rows by deleting them from this table with
-- FOR UPDATE SKIP LOCKED. A raw row is pending while its id is here, failed
-- while it has a failure_reason, and done otherwise.
drop index raw_diamonds_nivoda_pending;
create table raw_diamonds_nivoda_pending (
    raw_id  bigint primary key
);
insert into raw_diamonds_nivoda_pending (raw_id)
select id from raw_diamonds_nivoda where status in ('pending', 'processing');
update raw_diamonds_nivoda set failure_reason = null where status <> 'failed';

alter table raw_diamonds_nivoda
    drop column status,
    drop column claimed_at,
    drop column claimed_by;

-- Payloads are stored as the supplier sent them. Consolidation reads every
-- payload once as text, and `json` hands its text over as stored, where
-- `jsonb` is converted back to text on every read.
alter table raw_diamonds_nivoda alter column payload type json using payload::json;

-- Search indexes set aside while a bulk load fills `diamonds`, so that they
-- are built once at the end instead of updated row by row. The definition is
-- kept here in the same transaction as the drop, so a crash cannot lose it.
create table deferred_indexes (
    index_name  text primary key,
    table_name  text not null,
    definition  text not null,
    deferred_at timestamptz not null default now()
);
