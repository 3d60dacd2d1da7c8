"""Diamond search, look-up and availability refresh."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation
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
    "price_per_carat": "priced_price_per_carat_cents",
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
RetailPerCaratCents = Annotated[
    int | None,
    Query(ge=0, le=10**13,
          description="Bound on the retail price per carat in cents,"
          " price_per_carat_cents"),
]
DiamondId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _values(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    items = [part.strip().upper() for value in values for part in value.split(",")]
    items = [item for item in items if item]
    if any("\x00" in item for item in items):
        raise ApiError(422, "a filter value contains a NUL character; remove it")
    return items or None


class SearchFilter:
    """The WHERE clause of a search: SQL conditions joined by "and", and their values."""

    def __init__(self) -> None:
        self.conditions: list[sql.Composable] = [sql.SQL("status = 'active'")]
        self.params: list = []

    def add(self, condition: str, value) -> None:
        if value is not None:
            self.conditions.append(sql.SQL(condition))
            self.params.append(value)

    def add_values(self, column: str, values: list[str] | None) -> None:
        # PostgreSQL 15 reads "= any(array)" on an index's leading column
        # unordered, so one value is sent as "=" to keep the ordered index scan.
        if values and len(values) == 1:
            self.add(f"{column} = %s", values[0])
        else:
            self.add(f"{column} = any(%s)", values)

    def where(self, extra: list[sql.Composable] = ()) -> sql.Composable:
        return sql.SQL(" and ").join([*self.conditions, *extra])


def search_filter(
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
    price_per_carat_min_cents: RetailPerCaratCents = None,
    price_per_carat_max_cents: RetailPerCaratCents = None,
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
) -> SearchFilter:
    """Validate the search parameters and build their WHERE clause."""
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

    where = SearchFilter()
    where.add_values("shape", _values(shape))
    where.add_values("color", _values(color))
    where.add_values("clarity", _values(clarity))
    where.add_values("cut", _values(cut))
    where.add_values("polish", _values(polish))
    where.add_values("symmetry", _values(symmetry))
    where.add_values("fluorescence", _values(fluorescence))
    where.add_values("certificate_lab", _values(lab))
    where.add("lab_grown = %s", lab_grown)

    where.add("carats >= %s", carat_min)
    where.add("carats <= %s", carat_max)
    where.add("priced_price_cents >= %s", price_min_cents)
    where.add("priced_price_cents <= %s", price_max_cents)
    where.add("priced_price_per_carat_cents >= %s", price_per_carat_min_cents)
    where.add("priced_price_per_carat_cents <= %s", price_per_carat_max_cents)
    where.add("depth_percent >= %s", depth_percent_min)
    where.add("depth_percent <= %s", depth_percent_max)
    where.add("table_percent >= %s", table_percent_min)
    where.add("table_percent <= %s", table_percent_max)
    where.add("length_width_ratio >= %s", ratio_min)
    where.add("length_width_ratio <= %s", ratio_max)

    where.add("(image_url is not null) = %s", has_image)
    where.add("(video_url is not null or v360_url is not null) = %s", has_video)
    where.add_values("availability", list(dict.fromkeys(availability or ["available"])))
    return where


@router.get("", response_model=DiamondPage, summary="Search diamonds", responses=ERRORS)
def search_diamonds(
    conn: Annotated[psycopg.Connection, Depends(get_conn)],
    _: Annotated[object, Depends(require("read"))],
    where: Annotated[SearchFilter, Depends(search_filter)],
    sort: Annotated[
        SortKey,
        Query(description="Sort key, descending with a leading -. price and"
              " price_per_carat sort by the retail prices"),
    ] = "price",
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_OFFSET_PAGES)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    include_total: bool = False,
) -> DiamondPage:
    """Search active stones. Use `cursor` for deep pages; `page` stops at 100."""
    if cursor is not None and page != 1:
        raise ApiError(422, "send either cursor or page, not both")
    column = sql.Identifier(_SORTS[sort.lstrip("-")])
    descending = sort.startswith("-")
    direction = sql.SQL("desc" if descending else "asc")

    keyset: list[sql.Composable] = []
    keyset_params: list = []
    if cursor is not None:
        last_value, last_id = decode_cursor(cursor, sort)
        comparison = sql.SQL("<" if descending else ">")
        keyset.append(sql.SQL("({}, id) {} (%s, %s)").format(column, comparison))
        keyset_params = [last_value, last_id]
    offset = 0 if cursor is not None else (page - 1) * limit

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL(
                "select * from diamonds where {} order by {} {}, id {} limit %s offset %s"
            ).format(where.where(keyset), column, direction, direction),
            [*where.params, *keyset_params, limit + 1, offset],
        ).fetchall()
        total = None
        if include_total:
            total = cur.execute(
                sql.SQL("select count(*) as n from diamonds where {}").format(
                    where.where()
                ),
                where.params,
            ).fetchone()["n"]

    more = len(rows) > limit
    rows = rows[:limit]
    return DiamondPage(
        items=[to_diamond(row) for row in rows],
        limit=limit,
        page=None if cursor is not None else page,
        next_cursor=encode_cursor(sort, rows[-1]) if more and rows else None,
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
        # bool is a subclass of int, but PostgreSQL cannot compare it with an id.
        is_id = isinstance(last_id, int) and not isinstance(last_id, bool)
        if not (is_id and isinstance(cursor_sort, str) and isinstance(value, str)):
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
        return _parse_carats(value)
    if name in _SORTS:
        return int(value)
    raise ValueError(f"unknown sort {sort!r}")


def _parse_carats(value: str) -> Decimal:
    # Decimal() raises InvalidOperation, not ValueError, on text that is no
    # number, and it accepts NaN and Infinity, which no stored stone has.
    try:
        carats = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"carats {value!r} is not a number") from None
    if not carats.is_finite():
        raise ValueError(f"carats {value!r} is not a finite number")
    return carats


def _check_range(name: str, low, high) -> None:
    if low is not None and high is not None and low > high:
        raise ApiError(422, f"{name}_min ({low}) is above {name}_max ({high})")


def to_diamond(row: dict) -> Diamond:
    skipped = ("price_cents", "price_per_carat_cents", "certificate")
    fields = {k: row[k] for k in Diamond.model_fields if k in row and k not in skipped}
    return Diamond(
        **fields,
        price_cents=row["priced_price_cents"],
        # The column is numeric(22, 0), which psycopg reads as a Decimal.
        price_per_carat_cents=int(row["priced_price_per_carat_cents"]),
        certificate={
            "lab": row["certificate_lab"],
            "number": row["certificate_number"],
            "pdf_url": row["certificate_pdf_url"],
        },
    )
