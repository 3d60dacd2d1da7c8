-- Base schema. Money is integer cents or NUMERIC, never floating point.

create table api_keys (
    id              bigserial primary key,
    key_hash        text not null unique,          -- hex SHA-256 of the key
    client_name     text not null,
    permissions     text[] not null default '{read}',
    active          boolean not null default true,
    created_at      timestamptz not null default now(),
    last_used_at    timestamptz,
    expires_at      timestamptz
);

create table run_metadata (
    run_id              text primary key,
    feed                text not null,
    run_type            text not null check (run_type in ('full', 'incremental')),
    status              text not null default 'running'
        check (status in ('running', 'consolidating', 'completed', 'partial',
                          'failed', 'skipped', 'cancelled')),
    updated_from        timestamptz not null,
    updated_to          timestamptz not null,
    expected_count      integer not null,
    partition_count     integer not null,
    trace_id            text,
    failure_reason      text,
    retired_count       integer,
    consolidated_count  integer,
    started_at          timestamptz not null default now(),
    finished_at         timestamptz,
    watermark_advanced  boolean not null default false
);
create index run_metadata_feed_started on run_metadata (feed, started_at desc);

-- One row per partition of a run: the single source of truth for progress.
create table partition_progress (
    run_id          text not null references run_metadata (run_id) on delete cascade,
    partition_id    integer not null,
    feed            text not null,
    price_min_cents bigint not null,
    price_max_cents bigint,                       -- null: no upper bound
    expected_count  integer not null,
    next_offset     integer not null default 0,
    pass            integer not null default 1,   -- re-paging after drift starts a new pass
    status          text not null default 'pending'
        check (status in ('pending', 'running', 'done', 'failed')),
    pages_fetched   integer not null default 0,
    stones_fetched  integer not null default 0,
    drifted         boolean not null default false,
    last_error      text,
    updated_at      timestamptz not null default now(),
    primary key (run_id, partition_id)
);
create index partition_progress_failed on partition_progress (run_id) where status = 'failed';

-- One row per page invocation of the worker, for operators; not used for counts.
create table worker_runs (
    id              bigserial primary key,
    run_id          text not null,
    partition_id    integer not null,
    page_offset     integer not null,
    message_id      text,
    delivery_count  integer,
    outcome         text not null,
    stones          integer not null default 0,
    error           text,
    duration_ms     integer,
    created_at      timestamptz not null default now()
);
create index worker_runs_run on worker_runs (run_id, partition_id);

create table raw_diamonds_nivoda (
    id                  bigserial primary key,
    supplier_stone_id   text not null unique,
    offer_id            text,
    run_id              text not null,            -- run that last changed the payload
    payload             jsonb not null,
    payload_hash        text not null,
    status              text not null default 'pending'
        check (status in ('pending', 'processing', 'done', 'failed')),
    failure_reason      text,
    claimed_at          timestamptz,
    claimed_by          text,
    last_seen_run_id    text not null,
    last_seen_partition integer,
    last_seen_pass      integer,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);
create index raw_diamonds_nivoda_pending on raw_diamonds_nivoda (id) where status = 'pending';
create index raw_diamonds_nivoda_seen on raw_diamonds_nivoda (last_seen_run_id, last_seen_partition);

create table diamonds (
    id                  bigserial primary key,
    feed                text not null,
    supplier_stone_id   text not null,
    offer_id            text not null,
    shape               text not null,
    carats              numeric(8, 3) not null,
    color               text,
    clarity             text,
    cut                 text,
    polish              text,
    symmetry            text,
    fluorescence        text,
    fluorescence_color  text,
    lab_grown           boolean not null,
    treated             boolean not null default false,
    feed_price_cents    bigint not null check (feed_price_cents > 0),
    price_per_carat_cents bigint not null,
    priced_price_cents  bigint not null,
    markup_ratio        numeric(8, 4) not null,
    rating              smallint,
    pricing_rule_id     bigint,
    availability        text not null
        check (availability in ('available', 'on_hold', 'sold', 'unavailable')),
    raw_availability    text not null,
    hold_id             text,
    image_url           text,
    video_url           text,
    v360_url            text,
    certificate_lab     text,
    certificate_number  text not null,
    certificate_pdf_url text,
    depth_percent       numeric(6, 2),
    table_percent       numeric(6, 2),
    length_width_ratio  numeric(6, 3),
    measurements        jsonb not null default '{}',
    attributes          jsonb not null default '{}',
    supplier_name       text,
    delivery_days_min   integer,
    delivery_days_max   integer,
    status              text not null default 'active' check (status in ('active', 'deleted')),
    source_updated_at   timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    unique (feed, supplier_stone_id)
);

create table pricing_rules (
    id                      bigserial primary key,
    priority                integer not null,
    carat_min               numeric(8, 3),
    carat_max               numeric(8, 3),
    shapes                  text[],
    lab_grown               boolean,
    feed                    text,
    feed_price_min_cents    bigint,
    feed_price_max_cents    bigint,
    markup_ratio            numeric(8, 4) not null check (markup_ratio > 0),
    rating                  smallint not null check (rating between 1 and 10),
    active                  boolean not null default true,
    description             text,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    check (carat_min is null or carat_max is null or carat_min <= carat_max),
    check (feed_price_min_cents is null or feed_price_max_cents is null
           or feed_price_min_cents <= feed_price_max_cents)
);
insert into pricing_rules (priority, markup_ratio, rating, description)
values (1000, 1.15, 5, 'Default markup');

create table hold_history (
    id                  bigserial primary key,
    diamond_id          bigint not null references diamonds (id),
    feed                text not null,
    supplier_stone_id   text not null,
    supplier_hold_id    text,
    status              text not null check (status in ('pending', 'active', 'denied',
                                                         'cancelled', 'failed')),
    until               timestamptz,
    client_name         text,
    error               text,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);
-- One stone, one live hold: concurrent requests race on this index.
create unique index hold_history_one_live on hold_history (diamond_id)
    where status in ('pending', 'active');

create table purchase_history (
    id                  bigserial primary key,
    idempotency_key     text not null unique,
    request_hash        text not null,
    diamond_id          bigint references diamonds (id),
    offer_id            text,
    status              text not null check (status in ('pending', 'completed', 'failed')),
    supplier_order_id   text,
    response_status     integer,
    response_body       text,
    client_name         text,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);

create table error_logs (
    id                  bigserial primary key,
    source              text not null,
    run_id              text,
    partition_id        integer,
    supplier_stone_id   text,
    message             text not null,
    details             jsonb,
    created_at          timestamptz not null default now()
);
create index error_logs_created on error_logs (created_at desc);
create index error_logs_run on error_logs (run_id);

create table heatmap_scans (
    id          bigserial primary key,
    run_id      text,
    feed        text not null,
    buckets     jsonb not null,
    partitions  jsonb not null,
    count_queries integer not null,
    created_at  timestamptz not null default now()
);
