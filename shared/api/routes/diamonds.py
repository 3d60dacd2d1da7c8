"""Diamond search and lookup."""

from __future__ import annotations

from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Query
from psycopg import sql
from psycopg.rows import dict_row

from shared.api.deps import get_conn, require
from shared.api.errors import ApiError
from shared.api.models import Diamond, DiamondPage

router = APIRouter(prefix="/api/v2/diamonds", tags=["diamonds"])

_SORTS = {
    "price": "priced_price_cents", "carats": "carats", "created": "created_at",
    "price_per_carat": "price_per_carat_cents", "rating": "rating",
}
SortKey = Literal["price", "-price", "carats", "-carats", "created", "-created",
                  "price_per_carat", "-price_per_carat", "rating", "-rating"]


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [part.strip().upper() for part in value.split(",") if part.strip()]
    return items or None


@router.get("", response_model=DiamondPage, summary="Search diamonds")
def search_diamonds(
    conn: Annotated[psycopg.Connection, Depends(get_conn)],
    _: Annotated[object, Depends(require("read"))],
    shape: Annotated[str | None, Query(description="Comma-separated shapes")] = None,
    color: Annotated[str | None, Query(description="Comma-separated colours")] = None,
    clarity: Annotated[str | None, Query(description="Comma-separated clarities")] = None,
    carat_min: Annotated[float | None, Query(ge=0)] = None,
    carat_max: Annotated[float | None, Query(ge=0)] = None,
    price_min_cents: Annotated[int | None, Query(ge=0)] = None,
    price_max_cents: Annotated[int | None, Query(ge=0)] = None,
    lab_grown: Annotated[bool | None, Query()] = None,
    availability: Annotated[str, Query()] = "available",
    sort: Annotated[SortKey, Query()] = "price",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DiamondPage:
    _check_range("carat", carat_min, carat_max)
    _check_range("price", price_min_cents, price_max_cents)
    conditions = [sql.SQL("status = 'active'")]
    params: list = []

    def add(condition: str, value) -> None:
        if value is not None:
            conditions.append(sql.SQL(condition))
            params.append(value)

    add("shape = any(%s)", _csv(shape))
    add("color = any(%s)", _csv(color))
    add("clarity = any(%s)", _csv(clarity))
    add("carats >= %s", carat_min)
    add("carats <= %s", carat_max)
    add("priced_price_cents >= %s", price_min_cents)
    add("priced_price_cents <= %s", price_max_cents)
    add("lab_grown = %s", lab_grown)
    add("availability = any(%s)", [a.lower() for a in _csv(availability) or []] or None)
    where = sql.SQL(" and ").join(conditions)
    column = sql.Identifier(_SORTS[sort.lstrip("-")])
    direction = sql.SQL("desc" if sort.startswith("-") else "asc")

    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute(
            sql.SQL("select count(*) as n from diamonds where {}").format(where), params
        ).fetchone()["n"]
        rows = cur.execute(
            sql.SQL("select * from diamonds where {} order by {} {}, id {}"
                    " limit %s offset %s").format(where, column, direction, direction),
            [*params, limit, (page - 1) * limit],
        ).fetchall()
    return DiamondPage(items=[to_diamond(r) for r in rows], total=total, page=page,
                       limit=limit)


@router.get("/{diamond_id}", response_model=Diamond, summary="Get one diamond")
def get_diamond(
    diamond_id: int,
    conn: Annotated[psycopg.Connection, Depends(get_conn)],
    _: Annotated[object, Depends(require("read"))],
) -> Diamond:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from diamonds where id = %s", (diamond_id,)).fetchone()
    if row is None:
        raise ApiError(404, f"diamond {diamond_id} not found")
    return to_diamond(row)


def _check_range(name: str, low, high) -> None:
    if low is not None and high is not None and low > high:
        raise ApiError(400, f"{name}_min ({low}) is above {name}_max ({high})")


def to_diamond(row: dict) -> Diamond:
    return Diamond(
        **{k: row[k] for k in Diamond.model_fields if k in row
           and k not in ("price_cents", "certificate")},
        price_cents=row["priced_price_cents"],
        certificate={"lab": row["certificate_lab"], "number": row["certificate_number"],
                     "pdf_url": row["certificate_pdf_url"]},
    )
