"""Holds on stones and the supplier's view of one stone.

One stone has at most one live hold: the partial unique index
`hold_history_one_live` admits one row in status pending or active per
diamond. A hold request inserts its pending row first, commits it, and only
then calls the supplier, so concurrent requests for the same stone lose at
the index and never reach the supplier. Holds send the stone id
(`diamond.id`); orders send the offer id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from shared.mapping import AVAILABILITY_VALUES
from shared.nivoda import DiamondQuery, NivodaError
from shared.nivoda.query import CaratRange

log = logging.getLogger(__name__)

# Pages of the narrow look-up query read before giving up on a stone.
LOOKUP_MAX_PAGES = 10
_CARAT_TOLERANCE = Decimal("0.0005")
# Longer than the supplier client's timeout with its retries, so a pending row
# this old belongs to a request that died.
PENDING_HOLD_TIMEOUT = timedelta(minutes=10)


class HoldError(Exception):
    """A hold request that cannot proceed; `status` is the HTTP status to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HoldOutcome:
    hold_id: int | None
    diamond_id: int
    supplier_hold_id: str | None
    status: str
    until: datetime | None

    @property
    def denied(self) -> bool:
        return self.status == "denied"


class StoneLookupQuery(DiamondQuery):
    """DiamondQuery plus the grade filters that narrow a look-up to a few stones."""

    color: tuple[str, ...] | None = None
    clarity: tuple[str, ...] | None = None
    cut: tuple[str, ...] | None = None
    lab: tuple[str, ...] | None = None


def lookup_query(row: dict) -> StoneLookupQuery:
    """Build the narrowest supplier query that still returns the stored stone."""
    carats = Decimal(row["carats"])

    def one(value: str | None) -> tuple[str, ...] | None:
        return (value,) if value else None

    return StoneLookupQuery(
        shapes=(row["shape"],),
        sizes=(CaratRange(from_=carats - _CARAT_TOLERANCE, to=carats + _CARAT_TOLERANCE),),
        labgrown=row["lab_grown"],
        color=one(row.get("color")),
        clarity=one(row.get("clarity")),
        lab=one(row.get("certificate_lab")),
    )


def find_supplier_stone(nivoda, row: dict) -> dict | None:
    """Return the supplier's current item for a stored stone, or None if unlisted.

    NOTE: the supplier API has no look-up by id, so this pages through a
    narrow search (shape, carats, lab grown, colour, clarity, lab) and
    matches `diamond.id`. It gives up after LOOKUP_MAX_PAGES pages of 50.
    """
    query = lookup_query(row)
    for page_number in range(LOOKUP_MAX_PAGES):
        page = nivoda.search(query, offset=page_number * 50, limit=50)
        for item in page.items:
            if (item.get("diamond") or {}).get("id") == row["supplier_stone_id"]:
                return item
        if len(page.items) < 50:
            return None
    log.warning(
        "stone look-up gave up after %s pages, supplier_stone_id=%s",
        LOOKUP_MAX_PAGES, row["supplier_stone_id"],
    )
    return None


def load_diamond(conn: psycopg.Connection, diamond_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from diamonds where id = %s", (diamond_id,)).fetchone()


def refresh_availability(runtime, diamond_id: int) -> dict | None:
    """Fetch the stone from the supplier and store its availability and hold id.

    Returns the updated row, or None when the diamond is not stored. A stone
    the supplier no longer lists becomes `unavailable`.
    """
    with runtime.pool.connection() as conn:
        row = load_diamond(conn, diamond_id)
    if row is None:
        return None
    item = find_supplier_stone(runtime.nivoda, row)
    if item is None:
        raw, availability, hold_id = "NOT_LISTED", "unavailable", None
    else:
        stone = item.get("diamond") or {}
        raw = str(stone.get("availability") or "")
        availability = AVAILABILITY_VALUES.get(raw.strip().upper(), "unavailable")
        hold_id = stone.get("HoldId")
    with runtime.pool.connection() as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            updated = cur.execute(
                "update diamonds set availability = %s, raw_availability = %s,"
                " hold_id = %s, updated_at = now() where id = %s returning *",
                (availability, raw, hold_id, diamond_id),
            ).fetchone()
        conn.commit()
    log.info(
        "availability refreshed, diamond_id=%s availability=%s", diamond_id, availability
    )
    return updated


def place_hold(runtime, diamond_id: int, client_name: str) -> HoldOutcome:
    """Hold one stone at the supplier; raise HoldError when it cannot be tried."""
    hold_id, row = _insert_pending_hold(runtime, diamond_id, client_name)
    try:
        result = runtime.nivoda.create_hold(row["supplier_stone_id"])
    except NivodaError as exc:
        _finish_hold(runtime, hold_id, "failed", error=str(exc))
        log.error("hold failed at the supplier, diamond_id=%s error=%s", diamond_id, exc)
        raise HoldError(502, f"the supplier rejected the hold: {exc}") from None
    except Exception as exc:
        _finish_hold(runtime, hold_id, "failed", error=repr(exc))
        raise

    if result.denied:
        _finish_hold(runtime, hold_id, "denied", supplier_hold_id=result.hold_id)
        log.info("hold denied, diamond_id=%s hold_id=%s", diamond_id, hold_id)
        return HoldOutcome(hold_id, diamond_id, result.hold_id, "denied", None)
    _finish_hold(
        runtime, hold_id, "active", supplier_hold_id=result.hold_id,
        until=result.until, diamond_id=diamond_id,
    )
    log.info("hold placed, diamond_id=%s hold_id=%s", diamond_id, hold_id)
    return HoldOutcome(hold_id, diamond_id, result.hold_id, "active", result.until)


def _insert_pending_hold(runtime, diamond_id: int, client_name: str) -> tuple[int, dict]:
    with runtime.pool.connection() as conn:
        row = load_diamond(conn, diamond_id)
        if row is None or row["status"] != "active":
            raise HoldError(404, f"diamond {diamond_id} not found")
        if row["availability"] == "sold":
            raise HoldError(409, f"diamond {diamond_id} is sold and cannot be held")
        _release_stale_holds(conn, diamond_id)
        try:
            hold_id = conn.execute(
                "insert into hold_history (diamond_id, feed, supplier_stone_id, status,"
                " client_name) values (%s, %s, %s, 'pending', %s) returning id",
                (diamond_id, row["feed"], row["supplier_stone_id"], client_name),
            ).fetchone()[0]
            conn.commit()
        except psycopg.errors.UniqueViolation:
            conn.rollback()
            raise HoldError(
                409,
                f"diamond {diamond_id} already has a live hold; cancel that hold"
                " or wait for it to expire",
            ) from None
    return hold_id, row


def _release_stale_holds(conn: psycopg.Connection, diamond_id: int) -> None:
    # A hold past its supplier expiry no longer blocks the stone, and neither
    # does a pending row whose process died before recording the supplier's
    # result (no supplier call takes PENDING_HOLD_TIMEOUT).
    released = conn.execute(
        "update hold_history set status = case status when 'active' then 'cancelled'"
        " else 'failed' end,"
        " error = case status when 'active' then 'expired at the supplier'"
        " else 'abandoned: no supplier result was recorded' end, updated_at = now()"
        " where diamond_id = %s and ((status = 'active' and until < now())"
        " or (status = 'pending' and created_at < now() - %s))",
        (diamond_id, PENDING_HOLD_TIMEOUT),
    ).rowcount
    if released:
        log.warning("stale holds released, diamond_id=%s count=%s", diamond_id, released)


def _finish_hold(
    runtime, hold_id: int, status: str, *, supplier_hold_id: str | None = None,
    until: datetime | None = None, error: str | None = None,
    diamond_id: int | None = None,
) -> None:
    with runtime.pool.connection() as conn:
        conn.execute(
            "update hold_history set status = %s, supplier_hold_id = %s, until = %s,"
            " error = %s, updated_at = now() where id = %s",
            (status, supplier_hold_id, until, error and error[:2000], hold_id),
        )
        if diamond_id is not None:
            conn.execute(
                "update diamonds set availability = 'on_hold', raw_availability = 'ON_HOLD',"
                " hold_id = %s, updated_at = now() where id = %s",
                (supplier_hold_id, diamond_id),
            )
        conn.commit()


def cancel_hold(runtime, hold_id: int, client_name: str | None = None) -> HoldOutcome:
    """Cancel a live hold at the supplier and release the stone.

    With `client_name`, only that client's holds may be cancelled; operators
    pass None to cancel any hold.
    """
    with runtime.pool.connection() as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            # The row lock makes a concurrent cancel of the same hold wait.
            hold = cur.execute(
                "select * from hold_history where id = %s for update", (hold_id,)
            ).fetchone()
        if hold is None:
            raise HoldError(404, f"hold {hold_id} not found")
        if client_name is not None and hold["client_name"] != client_name:
            raise HoldError(403, f"hold {hold_id} belongs to another client")
        if hold["status"] != "active":
            raise HoldError(409, f"hold {hold_id} is {hold['status']}, not active")
        try:
            runtime.nivoda.cancel_hold(hold["supplier_hold_id"])
        except NivodaError as exc:
            log.error("hold cancel failed at the supplier, hold_id=%s error=%s", hold_id, exc)
            raise HoldError(502, f"the supplier rejected the cancel: {exc}") from None
        conn.execute(
            "update hold_history set status = 'cancelled', updated_at = now()"
            " where id = %s",
            (hold_id,),
        )
        conn.execute(
            "update diamonds set availability = 'available', raw_availability = 'AVAILABLE',"
            " hold_id = null, updated_at = now() where id = %s and hold_id = %s",
            (hold["diamond_id"], hold["supplier_hold_id"]),
        )
        conn.commit()
    log.info("hold cancelled, hold_id=%s diamond_id=%s", hold_id, hold["diamond_id"])
    return HoldOutcome(hold_id, hold["diamond_id"], hold["supplier_hold_id"], "cancelled",
                       None)
