"""Turn raw payloads into priced `diamonds` rows.

Each batch is one transaction: take ids off the pending table with
`FOR UPDATE SKIP LOCKED` (so several consolidators share the work), map the
payloads, stage the mapped rows with COPY, price and upsert them in one
statement, and mark the raw rows done or failed. A crash rolls the whole
batch back, ids included, so a repeated batch neither loses nor doubles a
stone.

Where the time goes (benchmarks/README.md has the figures): parsing and
mapping each payload in Python, then the upsert into `diamonds` and its
indexes. Marking raw rows done is a heap-only update (see migration 0005).
A consolidator spends about half of its time waiting for PostgreSQL, so
running two side by side, as the gate does, keeps both the Python process and
the server busy.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import orjson
import psycopg
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from shared.mapping import DIAMOND_RECORD_COLUMNS, MappingError, map_offer, replace_nul
from shared import json_codec
from shared.raw_store import pending_table

log = logging.getLogger(__name__)

_MEASUREMENTS_INDEX = DIAMOND_RECORD_COLUMNS.index("measurements")
_ATTRIBUTES_INDEX = DIAMOND_RECORD_COLUMNS.index("attributes")
_KEY_COLUMNS = ("feed", "supplier_stone_id")


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    upserted: int
    failed: int


@dataclass(frozen=True)
class ConsolidationResult:
    batches: int
    claimed: int
    upserted: int
    failed: int
    seconds: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def release_stuck_claims(conn: psycopg.Connection, raw_table: str, minutes: int) -> int:
    """Return raw rows claimed more than `minutes` ago to pending."""
    # NOTE: batches claim ids with row locks inside one transaction and never
    # write 'processing', so this only frees rows left by a consolidator that
    # wrote claims (an older release, or a manual repair).
    released = _return_to_pending(
        conn, raw_table,
        "status = 'processing' and claimed_at < now() - make_interval(mins => %s)",
        (minutes,),
    )
    if released:
        log.warning("released stuck claims, table=%s rows=%s", raw_table, released)
    return released


def requeue_failed(conn: psycopg.Connection, raw_table: str) -> int:
    """Queue every raw row that failed to map for the next consolidation.

    For use after a mapping fix: a failed row is otherwise taken again only
    when its payload changes. Returns the number of rows queued. Commits.
    """
    with conn.transaction():
        queued = _return_to_pending(conn, raw_table, "status = 'failed'", ())
    log.info("failed raw rows queued again, table=%s rows=%s", raw_table, queued)
    return queued


def _return_to_pending(conn, raw_table: str, condition: str, params: tuple) -> int:
    """Set the raw rows matching `condition` to pending and queue their ids."""
    query = sql.SQL(
        "with returned as ("
        " update {table} set status = 'pending', failure_reason = null,"
        " claimed_at = null, claimed_by = null where " + condition + " returning id)"
        " insert into {pending} (raw_id) select id from returned"
        " on conflict (raw_id) do nothing"
    ).format(table=sql.Identifier(raw_table),
             pending=sql.Identifier(pending_table(raw_table)))
    return conn.execute(query, params).rowcount


def consolidate_pending(
    pool, *, feed: str, raw_table: str, batch_size: int, max_seconds: float | None = None,
) -> ConsolidationResult:
    """Consolidate pending raw rows until none is left or the time budget is spent."""
    started = time.monotonic()
    worker_id = uuid.uuid4().hex[:12]
    totals = [0, 0, 0, 0]
    while max_seconds is None or time.monotonic() - started < max_seconds:
        with pool.connection() as conn:
            result = consolidate_batch(conn, feed=feed, raw_table=raw_table,
                                       batch_size=batch_size, worker_id=worker_id)
        if result.claimed == 0:
            break
        for index, value in enumerate((1, result.claimed, result.upserted, result.failed)):
            totals[index] += value
    outcome = ConsolidationResult(*totals, seconds=round(time.monotonic() - started, 3))
    log.info("consolidation pass done, feed=%s batches=%s claimed=%s upserted=%s"
             " failed=%s seconds=%s", feed, *totals, outcome.seconds)
    return outcome


def consolidate_batch(
    conn: psycopg.Connection, *, feed: str, raw_table: str, batch_size: int,
    worker_id: str,
) -> BatchResult:
    """Consolidate up to `batch_size` pending raw rows in one transaction.

    `worker_id` names the consolidator in logs. The claimed ids stay locked
    until the transaction ends, so no other consolidator takes them meanwhile.
    """
    with conn.transaction():
        _prepare_batch(conn)
        claimed = _claim(conn, raw_table, batch_size)
        if not claimed:
            return BatchResult(0, 0, 0)
        mapped, failures = _map_rows(claimed, feed)
        upserted, rejected = _upsert_batch(conn, mapped)
        failures += rejected
        _mark_failed(conn, raw_table, failures)
    log.debug("batch consolidated, worker_id=%s claimed=%s upserted=%s failed=%s",
              worker_id, len(claimed), upserted, len(failures))
    return BatchResult(len(claimed), upserted, len(failures))


def _prepare_batch(conn) -> None:
    # JIT compiling the upsert costs more than it saves on a batch of a few
    # thousand rows. The SHARE lock lets batches run side by side but makes
    # a pricing rule change wait for them, and them for it, so that no batch
    # prices stones with rules that a committed change has replaced.
    conn.execute("set local jit = off")
    # A batch lost in a server crash is lost whole, claims included, and
    # another consolidator takes its rows again. So the commit need not wait
    # for the disk.
    conn.execute("set local synchronous_commit = off")
    conn.execute("lock table pricing_rules in share mode")


# The raw rows are locked before their ids leave the pending table, and a row
# that a worker is rewriting is skipped. A worker locks the raw row first and
# then adds its id to the pending table, so taking the two locks in the other
# order would let a worker and a consolidator wait for each other.
_CLAIM = """
with candidates as (
    select raw_id from {pending} order by raw_id limit %s for update skip locked),
locked as (
    select r.id from {raw} r where r.id = any(array(select raw_id from candidates))
    for no key update of r skip locked),
claimed as (
    delete from {pending} where raw_id = any(array(select id from locked))
    returning raw_id)
update {raw} r set status = 'done', failure_reason = null, claimed_at = null,
    claimed_by = null
from claimed c where r.id = c.raw_id
returning r.id, r.supplier_stone_id, r.payload
"""


def _claim(conn, raw_table: str, batch_size: int) -> list[tuple]:
    """Take up to `batch_size` ids off the pending table; return their raw rows.

    Each row is (id, supplier_stone_id, payload as JSON bytes). The rows are
    marked done at once, in the batch's transaction: the rows that fail to
    map are marked failed before it commits, and a batch that fails rolls
    the marks back with the claims.
    """
    query = sql.SQL(_CLAIM).format(pending=sql.Identifier(pending_table(raw_table)),
                                   raw=sql.Identifier(raw_table))
    with conn.cursor(binary=True) as cur:
        cur.adapters.register_loader("jsonb", JsonbTextLoader)
        return cur.execute(query, (batch_size,)).fetchall()


class JsonbTextLoader(Loader):
    """Load binary jsonb as its JSON text in bytes, for orjson to parse."""

    format = Format.BINARY

    def load(self, data) -> bytes:
        # Binary jsonb is a version byte followed by the JSON text.
        return bytes(data[1:])


def _map_rows(claimed: list[tuple], feed: str):
    mapped = []
    failures = []
    for row_id, stone_id, payload in claimed:
        try:
            long_digits = _has_long_digits(payload)
            parsed = _parse_payload(payload, long_digits=long_digits)
            record = map_offer(parsed, feed)
            _check_column_ranges(record)
            if long_digits:
                _check_attributes(parsed, record)
        except MappingError as exc:
            failures.append((row_id, stone_id, str(exc)))
            continue
        mapped.append((row_id, record))
    return mapped, failures


_MAX_BIGINT = 2**63 - 1
_MAX_INTEGER = 2**31 - 1
# Pricing multiplies the price by a markup_ratio, a numeric(8, 4) below
# 10,000, and stores the product as bigint.
_MAX_PRICE_CENTS = _MAX_BIGINT // 10_000
# numeric(8, 3) rounds half away from zero, so smaller carats are stored as 0.
_MIN_CARATS = Decimal("0.0005")


def _check_column_ranges(record) -> None:
    """Raise MappingError for a value that its column cannot store.

    One such value would otherwise fail the COPY or the upsert of the whole
    batch, on every retry. With the price at most _MAX_PRICE_CENTS and the
    carats at least _MIN_CARATS, the feed price per carat fits bigint as well.
    """
    if record.feed_price_cents > _MAX_PRICE_CENTS:
        raise MappingError(
            f"price is {record.feed_price_cents} cents, expected at most "
            f"{_MAX_PRICE_CENTS}"
        )
    if record.carats < _MIN_CARATS:
        raise MappingError(
            f"certificate.carats is {record.carats}, expected at least {_MIN_CARATS},"
            " since the column keeps 3 decimal places"
        )
    for days, field in (
        (record.delivery_days_min, "min_business_days"),
        (record.delivery_days_max, "max_business_days"),
    ):
        if days is not None and days > _MAX_INTEGER:
            raise MappingError(
                f"diamond.delivery_time.{field} is {days}, expected at most "
                f"{_MAX_INTEGER}"
            )


def _check_attributes(payload, record) -> None:
    """Raise MappingError for an OversizedInteger that the row's attributes keep.

    The API reads jsonb columns with json.loads, which raises for such an
    integer, so every search that returned the stone would fail.
    """
    payload_paths = {
        id(value): path
        for path, value in json_codec.leaves(payload)
        if isinstance(value, json_codec.OversizedInteger)
    }
    if not payload_paths:
        return
    for path, value in json_codec.leaves(record.attributes, "attributes"):
        if isinstance(value, json_codec.OversizedInteger):
            # map_offer copies attributes from the payload as they are, so the
            # same object names the payload field.
            field = payload_paths.get(id(value), path)
            raise MappingError(
                f"{field} is {value.describe()}, so the API could not read it"
                " back from diamonds.attributes"
            )


# Nineteen digits in a row may be an integer beyond 64 bits. Turning every
# digit into a zero and looking for nineteen zeros is about ten times as fast
# as a regular expression on these payloads.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19
_ESCAPED_NUL = b"\\u0000"


def _has_long_digits(payload: bytes) -> bool:
    return _LONG_DIGITS in payload.translate(_DIGITS_TO_ZERO)


def _parse_payload(payload: bytes, *, long_digits: bool | None = None):
    """Parse a payload as json.loads does, with orjson where that gives the same.

    Raises MappingError for text that is not a JSON document this system can
    store, such as a lone UTF-16 surrogate in a string, and turns NUL
    characters in strings into U+FFFD, as error logs do. jsonb rejects both
    when a worker stores a payload, so these checks guard rows written by
    other tools. `long_digits` is `_has_long_digits(payload)`, if known.
    """
    if long_digits is None:
        long_digits = _has_long_digits(payload)
    try:
        if long_digits:
            # orjson reads an integer beyond 64 bits as a float, where
            # json.loads returns an int, and map_offer checks types. An
            # integer beyond Python's digit limit becomes an OversizedInteger.
            parsed = json_codec.loads(payload)
            # Raises for a lone surrogate, which no text column can store.
            json_codec.dumps(parsed, ensure_ascii=False).encode()
        else:
            parsed = orjson.loads(payload)
    except (ValueError, TypeError) as exc:
        raise MappingError(f"payload is not valid JSON: {exc}") from None
    # A string with an escaped NUL would fail the COPY of the whole batch.
    return replace_nul(parsed) if _ESCAPED_NUL in payload else parsed


# Errors that one row's values can cause in the COPY or the upsert: a value
# out of range or a violated constraint in PostgreSQL, an index entry too
# large, or an integer too large for psycopg's binary dumper.
_ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError,
               psycopg.errors.ProgramLimitExceeded, OverflowError)


def _upsert_batch(conn, mapped: list[tuple]) -> tuple[int, list[tuple]]:
    """Upsert the mapped rows and return the count upserted and the rows rejected.

    When one row's values make the COPY or the upsert fail, each row is tried
    again on its own, so that the row fails alone and the rest are stored.
    Rejected rows are (id, supplier_stone_id, reason), like _map_rows failures.
    """
    try:
        with conn.transaction():
            return _upsert_mapped(conn, [record for _, record in mapped]), []
    except _ROW_ERRORS as exc:
        log.warning("batch upsert failed, retrying row by row, rows=%s error=%s",
                    len(mapped), _first_line(exc))
    upserted = 0
    rejected = []
    for row_id, record in mapped:
        try:
            with conn.transaction():
                upserted += _upsert_mapped(conn, [record])
        except _ROW_ERRORS as exc:
            rejected.append((row_id, record.supplier_stone_id,
                             f"row not stored: {_first_line(exc)}"))
    return upserted, rejected


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _upsert_mapped(conn, records: list) -> int:
    if not records:
        return 0
    columns = sql.SQL(", ").join(map(sql.Identifier, DIAMOND_RECORD_COLUMNS))
    # Only the mapped columns, without the table's constraints: pricing fills
    # in the rest during the upsert.
    conn.execute(
        sql.SQL(
            "create temp table if not exists stage_diamonds on commit delete rows"
            " as select {} from diamonds with no data"
        ).format(columns)
    )
    # Binary COPY spares formatting and parsing text on both sides.
    copy = sql.SQL("copy stage_diamonds ({}) from stdin (format binary)").format(
        columns
    )
    type_oids = _stage_type_oids(conn)
    with conn.cursor() as cur, cur.copy(copy) as writer:
        writer.set_types(type_oids)
        for record in records:
            writer.write_row(_copy_values(record))
    cur = conn.execute(_UPSERT_STAGED)
    conn.execute("truncate stage_diamonds")
    return cur.rowcount


_type_oids: list[int] = []


def _stage_type_oids(conn) -> list[int]:
    """Return the type oids of the staged columns, in DIAMOND_RECORD_COLUMNS order.

    They are built-in types, whose oids are the same in every database, so
    one look-up per process is enough.
    """
    if not _type_oids:
        rows = conn.execute(
            "select a.atttypid::int from unnest(%s::text[]) with ordinality"
            " as c (name, position)"
            " join pg_attribute a on a.attrelid = 'stage_diamonds'::regclass"
            " and a.attname = c.name order by c.position",
            (list(DIAMOND_RECORD_COLUMNS),),
        ).fetchall()
        _type_oids[:] = [row[0] for row in rows]
    return _type_oids


def _copy_values(record) -> list:
    values = list(record)
    values[_MEASUREMENTS_INDEX] = Jsonb(values[_MEASUREMENTS_INDEX], dumps=_dump_json)
    values[_ATTRIBUTES_INDEX] = Jsonb(values[_ATTRIBUTES_INDEX], dumps=_dump_json)
    return values


def _dump_json(value) -> bytes:
    # orjson writes these dicts of strings, numbers, booleans and nulls as
    # json.dumps does, in a fraction of the time.
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # orjson rejects integers beyond 64 bits, which attributes copy from
        # the payload as they are. jsonb stores them as numeric.
        return json.dumps(value, separators=(",", ":")).encode()


def _upsert_statement(columns: list[str]) -> sql.Composed:
    """Price every staged stone with the first matching rule and upsert it.

    Unchanged stones are skipped by the WHERE clause of the update.
    `priced_price_per_carat_cents` is a generated column (migration 0007), so
    PostgreSQL computes it from the priced price in this statement.
    """
    ident = sql.Identifier
    mapped = sql.SQL(", ").join(ident(c) for c in columns)
    staged = sql.SQL(", ").join(sql.SQL("s.") + ident(c) for c in columns)
    updates = [c for c in columns if c not in _KEY_COLUMNS] + [
        "priced_price_cents", "markup_ratio", "rating", "pricing_rule_id", "status"]
    assignments = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(ident(c)) for c in updates
    )
    current = sql.SQL(", ").join(sql.SQL("d.") + ident(c) for c in updates)
    incoming = sql.SQL(", ").join(sql.SQL("excluded.") + ident(c) for c in updates)
    return sql.SQL(
        "insert into diamonds as d ({mapped}, priced_price_cents, markup_ratio, rating,"
        " pricing_rule_id, status)"
        " select {staged}, round(s.feed_price_cents * r.markup_ratio)::bigint,"
        " r.markup_ratio, r.rating, r.id,"
        " case when s.availability = 'sold' then 'deleted' else 'active' end"
        " from stage_diamonds s cross join lateral ("
        "  select * from pricing_rules pr"
        "  where pricing_rule_matches(pr, s.feed, s.carats, s.shape, s.lab_grown,"
        "                             s.feed_price_cents)"
        "  order by pr.priority, pr.id limit 1) r"
        " on conflict (feed, supplier_stone_id) do update set {assignments},"
        " updated_at = now()"
        " where ({current}) is distinct from ({incoming})"
    ).format(mapped=mapped, staged=staged, assignments=assignments, current=current,
             incoming=incoming)


_UPSERT_STAGED = _upsert_statement(list(DIAMOND_RECORD_COLUMNS))


def _mark_failed(conn, raw_table: str, failures: list[tuple]) -> None:
    if not failures:
        return
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL("update {table} set status = 'failed', failure_reason = %s,"
                    " claimed_at = null, claimed_by = null where id = %s").format(
                table=sql.Identifier(raw_table)),
            [(reason, row_id) for row_id, _, reason in failures],
        )
        # The run that fetched the payload, so operators find it from the run.
        cur.executemany(
            sql.SQL("insert into error_logs (source, run_id, supplier_stone_id, message)"
                    " select 'consolidation', r.run_id, r.supplier_stone_id, %s"
                    " from {table} r where r.id = %s").format(
                table=sql.Identifier(raw_table)),
            [(f"payload not mapped: {reason}", row_id) for row_id, _, reason in failures],
        )
    log.warning("payloads not mapped, rows=%s first_reason=%s", len(failures),
                failures[0][2])


def retire_unseen(conn: psycopg.Connection, *, feed: str, raw_table: str,
                  run_id: str) -> int:
    """Mark active stones that a complete full run did not see as deleted.

    Their raw rows lose their hash, so a stone that comes back is consolidated
    again even if its payload is unchanged.
    """
    table = sql.Identifier(raw_table)
    # Every stone in `diamonds` came from a raw row and raw rows are never
    # deleted, so a join finds the unseen ones. The join's plan does not hang
    # on statistics: NOT EXISTS on the new run id, which the statistics have
    # never seen, was planned as a nested loop over both tables.
    retire = sql.SQL(
        "update diamonds d set status = 'deleted', updated_at = now()"
        " from {table} r where r.supplier_stone_id = d.supplier_stone_id"
        " and d.feed = %s and d.status = 'active' and r.last_seen_run_id <> %s"
    ).format(table=table)
    # now() is the transaction's start time, so it marks exactly the stones
    # retired above, and the raw rows are found through their unique index.
    clear_hashes = sql.SQL(
        "update {table} r set payload_hash = '' from diamonds d"
        " where d.feed = %s and d.status = 'deleted' and d.updated_at = now()"
        " and r.supplier_stone_id = d.supplier_stone_id"
    ).format(table=table)
    with conn.transaction():
        retired = conn.execute(retire, (feed, run_id)).rowcount
        conn.execute(clear_hashes, (feed,))
    log.info("retired unseen stones, feed=%s run_id=%s stones=%s", feed, run_id, retired)
    return retired
