"""Diamond search, look-up and availability refresh."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from psycopg import sql
from psycopg.rows import dict_row

from shared import holds
from shared.api.deps import get_conn, get_runtime_dep, require
from shared.api.errors import ApiError
from shared.api.models import Diamond, DiamondPage, ErrorEnvelope
from shared.nivoda import NivodaError

router = APIRouter(prefix="/api/v2/diamonds", tags=["diamonds"])

# Each sort column has a partial index (column, id) where status = 'active'.
_SORTS = {
    "price": "priced_price_cents",
    "carats": "carats",
    "created": "created_at",
    "price_per_carat": "price_per_carat_cents",
}
SortKey = Literal[
    "price", "-price", "carats", "-carats", "created", "-created",
    "price_per_carat", "-price_per_carat",
]
AvailabilityValue = Literal["available", "on_hold", "sold", "unavailable"]
MAX_OFFSET_PAGES = 100

ERRORS = {
    401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope},
    404: {"model": ErrorEnvelope}, 422: {"model": ErrorEnvelope},
    429: {"model": ErrorEnvelope},
}

Grades = Annotated[
    list[str] | None,
    Query(description="One or more values: repeat the parameter or separate by commas"),
]
NonNegative = Annotated[Decimal | None, Query(ge=0, le=1_000_000)]
Cents = Annotated[int | None, Query(ge=0, le=10**13)]
DiamondId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _values(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    items = [part.strip().upper() for value in values for part in value.split(",")]
    items = [item for item in items if item]
    if any("\x00" in item for item in items):
        raise ApiError(422, "a filter value contains a NUL character; remove it")
    return items or None


@router.get("", response_model=DiamondPage, summary="Search diamonds", responses=ERRORS)
def search_diamonds(
    conn: Annotated[psycopg.Connection, Depends(get_conn)],
    _: Annotated[object, Depends(require("read"))],
    shape: Grades = None,
    color: Grades = None,
    clarity: Grades = None,
    cut: Grades = None,
    polish: Grades = None,
    symmetry: Grades = None,
    fluorescence: Grades = None,
    lab: Annotated[list[str] | None, Query(description="Certificate labs, e.g. GIA")] = None,
    lab_grown: bool | None = None,
    carat_min: NonNegative = None,
    carat_max: NonNegative = None,
    price_min_cents: Cents = None,
    price_max_cents: Cents = None,
    price_per_carat_min_cents: Cents = None,
    price_per_carat_max_cents: Cents = None,
    depth_percent_min: NonNegative = None,
    depth_percent_max: NonNegative = None,
    table_percent_min: NonNegative = None,
    table_percent_max: NonNegative = None,
    ratio_min: NonNegative = None,
    ratio_max: NonNegative = None,
    has_image: bool | None = None,
    has_video: bool | None = None,
    availability: Annotated[
        list[AvailabilityValue] | None, Query(description="Default: available")
    ] = None,
    sort: SortKey = "price",
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_OFFSET_PAGES)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    include_total: bool = False,
) -> DiamondPage:
    """Search active stones. Use `cursor` for deep pages; `page` stops at 100."""
    ranges = {
        "carat": (carat_min, carat_max),
        "price": (price_min_cents, price_max_cents),
        "price_per_carat": (price_per_carat_min_cents, price_per_carat_max_cents),
        "depth_percent": (depth_percent_min, depth_percent_max),
        "table_percent": (table_percent_min, table_percent_max),
        "ratio": (ratio_min, ratio_max),
    }
    for name, (low, high) in ranges.items():
        _check_range(name, low, high)
    if cursor is not None and page != 1:
        raise ApiError(422, "send either cursor or page, not both")

    conditions = [sql.SQL("status = 'active'")]
    params: list = []

    def add(condition: str, value) -> None:
        if value is not None:
            conditions.append(sql.SQL(condition))
            params.append(value)

    add("shape = any(%s)", _values(shape))
    add("color = any(%s)", _values(color))
    add("clarity = any(%s)", _values(clarity))
    add("cut = any(%s)", _values(cut))
    add("polish = any(%s)", _values(polish))
    add("symmetry = any(%s)", _values(symmetry))
    add("fluorescence = any(%s)", _values(fluorescence))
    add("certificate_lab = any(%s)", _values(lab))
    add("lab_grown = %s", lab_grown)
    add("carats >= %s", carat_min)
    add("carats <= %s", carat_max)
    add("priced_price_cents >= %s", price_min_cents)
    add("priced_price_cents <= %s", price_max_cents)
    add("price_per_carat_cents >= %s", price_per_carat_min_cents)
    add("price_per_carat_cents <= %s", price_per_carat_max_cents)
    add("depth_percent >= %s", depth_percent_min)
    add("depth_percent <= %s", depth_percent_max)
    add("table_percent >= %s", table_percent_min)
    add("table_percent <= %s", table_percent_max)
    add("length_width_ratio >= %s", ratio_min)
    add("length_width_ratio <= %s", ratio_max)
    if has_image is not None:
        conditions.append(sql.SQL("(image_url is not null) = %s"))
        params.append(has_image)
    if has_video is not None:
        conditions.append(sql.SQL("(video_url is not null or v360_url is not null) = %s"))
        params.append(has_video)
    add("availability = any(%s)", list(dict.fromkeys(availability or ["available"])))

    filter_sql = sql.SQL(" and ").join(conditions)
    filter_params = list(params)
    column = sql.Identifier(_SORTS[sort.lstrip("-")])
    descending = sort.startswith("-")
    if cursor is not None:
        last_value, last_id = decode_cursor(cursor, sort)
        comparison = sql.SQL("<" if descending else ">")
        conditions.append(sql.SQL("({}, id) {} (%s, %s)").format(column, comparison))
        params.extend([last_value, last_id])
    where = sql.SQL(" and ").join(conditions)
    direction = sql.SQL("desc" if descending else "asc")
    offset = 0 if cursor is not None else (page - 1) * limit

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "select * from diamonds where {} order by {} {}, id {} limit %s offset %s"
            ).format(where, column, direction, direction),
            [*params, limit + 1, offset],
        ).fetchall()
        total = None
        if include_total:
            total = cur.execute(
                sql.SQL("select count(*) as n from diamonds where {}").format(filter_sql),
                filter_params,
            ).fetchone()["n"]

    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(sort, rows[-1]) if more and rows else None
    return DiamondPage(
        items=[to_diamond(row) for row in rows],
        limit=limit,
        page=None if cursor is not None else page,
        next_cursor=next_cursor,
        total=total,
    )


@router.get("/{diamond_id}", response_model=Diamond, summary="Get one diamond",
            responses=ERRORS)
def get_diamond(
    diamond_id: DiamondId,
    conn: Annotated[psycopg.Connection, Depends(get_conn)],
    _: Annotated[object, Depends(require("read"))],
) -> Diamond:
    row = holds.load_diamond(conn, diamond_id)
    if row is None:
        raise ApiError(404, f"diamond {diamond_id} not found")
    return to_diamond(row)


@router.post("/{diamond_id}/availability", response_model=Diamond,
             summary="Refresh a diamond's availability from the supplier",
             responses={**ERRORS, 502: {"model": ErrorEnvelope}})
async def refresh_availability(
    diamond_id: DiamondId,
    _: Annotated[object, Depends(require("trade"))],
    runtime=Depends(get_runtime_dep),
) -> Diamond:
    try:
        row = await run_in_threadpool(holds.refresh_availability, runtime, diamond_id)
    except NivodaError as exc:
        raise ApiError(502, f"the supplier look-up failed: {exc}") from None
    if row is None:
        raise ApiError(404, f"diamond {diamond_id} not found")
    return to_diamond(row)


def encode_cursor(sort: str, row: dict) -> str:
    value = row[_SORTS[sort.lstrip("-")]]
    text = json.dumps([sort, str(value), row["id"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[object, int]:
    """Return (last sort value, last id) of an opaque cursor made for `sort`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, value, last_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(last_id, int) or not isinstance(value, str):
            raise ValueError("cursor fields have the wrong types")
        parsed = _parse_sort_value(cursor_sort, value)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            422, "cursor is invalid; pass next_cursor from the previous page unchanged"
        ) from None
    if cursor_sort != sort:
        raise ApiError(
            422, f"cursor was made for sort {cursor_sort!r}, not {sort!r}; keep the sort"
        )
    return parsed, last_id


def _parse_sort_value(sort: str, value: str):
    from datetime import datetime

    name = sort.lstrip("-")
    if name == "created":
        return datetime.fromisoformat(value)
    if name == "carats":
        return Decimal(value)
    if name in _SORTS:
        return int(value)
    raise ValueError(f"unknown sort {sort!r}")


def _check_range(name: str, low, high) -> None:
    if low is not None and high is not None and low > high:
        raise ApiError(422, f"{name}_min ({low}) is above {name}_max ({high})")


def to_diamond(row: dict) -> Diamond:
    skipped = ("price_cents", "certificate")
    fields = {k: row[k] for k in Diamond.model_fields if k in row and k not in skipped}
    return Diamond(
        **fields,
        price_cents=row["priced_price_cents"],
        certificate={
            "lab": row["certificate_lab"],
            "number": row["certificate_number"],
            "pdf_url": row["certificate_pdf_url"],
        },
    )
