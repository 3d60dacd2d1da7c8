"""DiamondQuery filters and sort orders evaluated on catalogue columns."""

import json
import math
from datetime import UTC, datetime

import numpy as np

from simulator.generation import (
    AVAILABILITIES,
    CLARITIES,
    COLORS,
    CUTS,
    LABS,
    MEMO,
    SHAPES,
    StoneColumns,
)

ORDER_TYPES = (
    "createdAt",
    "price",
    "price_per_carat",
    "size",
    "color",
    "clarity",
    "cut",
    "discount",
)
DEFAULT_ORDER = {"type": "createdAt", "direction": "ASC"}
FAIR_POOR_CUTS = (CUTS.index("FAIR"),)


class QueryError(ValueError):
    """A filter or order value that the simulator cannot evaluate."""


def cache_key(query: dict, order: dict | None = None) -> str:
    """Return a canonical text for a query and order, used as a cache key."""
    return json.dumps([query, order or DEFAULT_ORDER], sort_keys=True, default=str)


def match_stones(columns: StoneColumns, query: dict) -> np.ndarray:
    """Return the boolean mask of listed stones that match `query`."""
    mask = columns.listed.copy()
    for name, value in query.items():
        if value is None:
            continue
        apply = _FILTERS.get(name)
        if apply is None:
            raise QueryError(
                f"filter {name!r} is not supported by the simulator; "
                f"use one of {sorted(_FILTERS)}"
            )
        mask &= apply(columns, value)
    return mask


def sort_positions(columns: StoneColumns, order: dict | None) -> np.ndarray:
    """Return all stone positions sorted by `order`, ties by the tie rank."""
    order = order or DEFAULT_ORDER
    order_type = order.get("type") or "createdAt"
    direction = order.get("direction") or "ASC"
    if order_type not in ORDER_TYPES:
        raise QueryError(
            f"order type {order_type!r} is invalid; use one of {ORDER_TYPES}"
        )
    if direction not in ("ASC", "DESC"):
        raise QueryError(f"order direction {direction!r} is invalid; use ASC or DESC")

    key = _order_key(columns, order_type)
    if direction == "DESC":
        key = -key
    # lexsort sorts by the last key first; the tie rank stays ascending, so
    # the order of tied stones is the same in both directions.
    return np.lexsort((columns.tie_rank, key))


def _order_key(columns: StoneColumns, order_type: str) -> np.ndarray:
    if order_type == "createdAt":
        return columns.created_ms
    if order_type == "price":
        return columns.price_cents
    if order_type == "price_per_carat":
        return columns.price_cents / columns.carat
    if order_type == "size":
        return columns.carat
    if order_type == "color":
        return columns.color.astype(np.int64)
    if order_type == "clarity":
        return columns.clarity.astype(np.int64)
    if order_type == "cut":
        # Best cut first in ascending order, as for color and clarity.
        return -columns.cut.astype(np.int64)
    # Stones without a discount sort last in ascending order.
    return np.nan_to_num(columns.discount, nan=math.inf)


def parse_datetime_ms(text: str, field: str) -> int:
    """Parse an ISO 8601 date-time into Unix milliseconds (UTC if no zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise QueryError(
            f"{field} {text!r} is not an ISO 8601 date-time; "
            "send e.g. 2025-03-01T10:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _range_mask(values: np.ndarray, bounds: dict, scale: float = 1.0) -> np.ndarray:
    mask = np.ones(len(values), dtype=bool)
    low, high = bounds.get("from"), bounds.get("to")
    if low is not None:
        mask &= values >= low * scale
    if high is not None:
        mask &= values <= high * scale
    return mask


def _filter_shapes(columns: StoneColumns, shapes: list) -> np.ndarray:
    return np.isin(columns.shape, _known_codes(shapes, SHAPES))


def _filter_sizes(columns: StoneColumns, sizes: list) -> np.ndarray:
    mask = np.zeros(len(columns), dtype=bool)
    for bounds in sizes:
        if bounds is not None:
            mask |= _range_mask(columns.carat, bounds)
    return mask


def _filter_labgrown(columns: StoneColumns, labgrown: bool) -> np.ndarray:
    return columns.labgrown == labgrown


def _filter_dollar_value(columns: StoneColumns, bounds: dict) -> np.ndarray:
    # Bounds are US dollars; both compare inclusively against whole cents.
    mask = np.ones(len(columns), dtype=bool)
    if bounds.get("from") is not None:
        mask &= columns.price_cents >= round(bounds["from"] * 100)
    if bounds.get("to") is not None:
        mask &= columns.price_cents <= round(bounds["to"] * 100)
    return mask


def _filter_dollar_per_carat(columns: StoneColumns, bounds: dict) -> np.ndarray:
    return _range_mask(columns.price_cents / columns.carat, bounds, scale=100.0)


def _filter_has_image(columns: StoneColumns, present: bool) -> np.ndarray:
    return columns.has_image == present


def _filter_has_v360(columns: StoneColumns, present: bool) -> np.ndarray:
    return columns.has_v360 == present


def _filter_availability(columns: StoneColumns, values: list) -> np.ndarray:
    names = ["ON_HOLD" if value == "HOLD" else value for value in values]
    return np.isin(columns.availability, _known_codes(names, AVAILABILITIES))


def _filter_exclude_fair_poor_cuts(columns: StoneColumns, exclude: bool) -> np.ndarray:
    if not exclude:
        return np.ones(len(columns), dtype=bool)
    return ~np.isin(columns.cut, FAIR_POOR_CUTS)


def _filter_hide_memo(columns: StoneColumns, hide: bool) -> np.ndarray:
    if not hide:
        return np.ones(len(columns), dtype=bool)
    return columns.availability != MEMO


def _filter_updated(columns: StoneColumns, window: dict) -> np.ndarray:
    mask = np.ones(len(columns), dtype=bool)
    if window.get("from") is not None:
        mask &= columns.updated_ms >= parse_datetime_ms(window["from"], "updated.from")
    if window.get("to") is not None:
        mask &= columns.updated_ms <= parse_datetime_ms(window["to"], "updated.to")
    return mask


def _vocabulary_filter(attribute: str, vocabulary: tuple):
    def apply(columns: StoneColumns, values: list) -> np.ndarray:
        return np.isin(getattr(columns, attribute), _known_codes(values, vocabulary))

    return apply


def _known_codes(values: list, vocabulary: tuple) -> list[int]:
    # An unknown value matches no stone, as an unknown grade would.
    requested = {str(value).upper() for value in values if value is not None}
    return [code for code, name in enumerate(vocabulary) if name in requested]


_FILTERS = {
    "shapes": _filter_shapes,
    "sizes": _filter_sizes,
    "labgrown": _filter_labgrown,
    "dollar_value": _filter_dollar_value,
    "dollar_per_carat": _filter_dollar_per_carat,
    "has_image": _filter_has_image,
    "has_v360": _filter_has_v360,
    "availability": _filter_availability,
    "excludeFairPoorCuts": _filter_exclude_fair_poor_cuts,
    "hide_memo": _filter_hide_memo,
    "updated": _filter_updated,
    "color": _vocabulary_filter("color", COLORS),
    "clarity": _vocabulary_filter("clarity", CLARITIES),
    "cut": _vocabulary_filter("cut", CUTS),
    "lab": _vocabulary_filter("lab", LABS),
}
