"""Mutable stone catalogue: queries, pages, holds, orders and mutations.

Every public method takes the catalogue lock, so the HTTP server threads see
consistent columns. Each distinct filter and order caches its result as an
array of stone positions in served order, and pages are slices of that
array. Any mutation clears the cache.
"""

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from simulator import filters, items
from simulator.generation import (
    AVAILABILITIES,
    AVAILABLE,
    ON_HOLD,
    SOLD,
    StoneColumns,
    generate_new_stones,
    generate_stones,
)

logger = logging.getLogger(__name__)

HOLD_DURATION_MS = 48 * 3600 * 1000
# Bound on the positions kept in the query cache, about 160 MB of int64.
MATCH_CACHE_MAX_POSITIONS = 20_000_000
MUTATION_KINDS = ("price_changes", "new_stones", "sold", "withdrawn")


class CatalogueError(ValueError):
    """A request about a stone, offer or hold that cannot be carried out."""


@dataclass
class Hold:
    """A hold placed through the API."""

    hold_id: str
    position: int
    until_ms: int


@dataclass
class CatalogueState:
    """Everything that mutations change, so that a reset swaps one object."""

    columns: StoneColumns
    holds: dict[str, Hold] = field(default_factory=dict)
    hold_ids: dict[int, str] = field(default_factory=dict)
    orders: dict[str, list[int]] = field(default_factory=dict)
    added_stones: dict[str, int] = field(default_factory=dict)
    added_offers: dict[str, int] = field(default_factory=dict)


class Catalogue:
    """The simulated supplier inventory."""

    def __init__(self, stones: int, seed: int) -> None:
        started = time.perf_counter()
        self.seed = seed
        self._initial = generate_stones(stones, seed)
        self._lock = threading.RLock()
        self._mutation_rng = np.random.default_rng([seed, 1])
        self._build_lookup()
        self.reset()
        logger.info(
            "Catalogue generated: stones=%d seed=%d seconds=%.2f",
            stones,
            seed,
            time.perf_counter() - started,
        )

    def reset(self) -> None:
        """Restore the catalogue as generated, dropping holds, orders, mutations."""
        with self._lock:
            self._state = CatalogueState(columns=self._initial.copy())
            self._clear_caches(orders="all")

    @property
    def size(self) -> int:
        """Number of stones, withdrawn ones included."""
        return len(self._state.columns)

    # Queries

    def count(self, query: dict) -> int:
        """Return the number of listed stones that match `query`."""
        key = filters.cache_key(query, None)
        with self._lock:
            positions = self._match_cache.get(key)
            if positions is not None:
                return len(positions)
            # A count needs no sort order, which is most of the cost of a
            # match, so it is not cached: a price scan sends many counts.
            return int(
                np.count_nonzero(filters.match_stones(self._state.columns, query))
            )

    def matching_positions(self, query: dict, order: dict | None) -> np.ndarray:
        """Return the positions of matching stones in served order (cached)."""
        key = filters.cache_key(query, order)
        with self._lock:
            positions = self._match_cache.get(key)
            if positions is not None:
                self._match_cache.move_to_end(key)
                return positions

            columns = self._state.columns
            mask = filters.match_stones(columns, query)
            ordered = self._sorted_positions(order)
            positions = ordered[mask[ordered]]
            self._remember_match(key, positions)
            return positions

    def build_items(self, positions) -> list[dict]:
        """Build the item JSON of the stones at `positions`."""
        with self._lock:
            return items.build_items(
                self._state.columns, positions, self._state.hold_ids
            )

    def truth(self, query: dict) -> list[dict]:
        """Return id, offer, price and availability of every matching stone."""
        with self._lock:
            columns = self._state.columns
            positions = self.matching_positions(query, None)
            values = zip(
                columns.stone_hi[positions].tolist(),
                columns.stone_lo[positions].tolist(),
                columns.offer_hi[positions].tolist(),
                columns.offer_lo[positions].tolist(),
                columns.price_cents[positions].tolist(),
                columns.availability[positions].tolist(),
                strict=True,
            )
            return [
                {
                    "stone_id": items.uuid_text(stone_hi, stone_lo),
                    "offer_id": "DIAMOND/" + items.uuid_text(offer_hi, offer_lo),
                    "price_cents": price,
                    "availability": AVAILABILITIES[available],
                }
                for stone_hi, stone_lo, offer_hi, offer_lo, price, available in values
            ]

    # Holds and orders

    def create_hold(self, stone_id: str) -> dict:
        """Place a hold on a stone; a stone not available gives a denied hold."""
        with self._lock:
            position = self._find_stone(stone_id)
            columns = self._state.columns
            if columns.availability[position] != AVAILABLE:
                return {"id": str(uuid.uuid4()), "denied": True, "until": None}

            hold = Hold(str(uuid.uuid4()), position, _now_ms() + HOLD_DURATION_MS)
            self._state.holds[hold.hold_id] = hold
            self._state.hold_ids[position] = hold.hold_id
            self._set_availability(position, ON_HOLD)
            logger.info("Hold created: hold_id=%s stone_id=%s", hold.hold_id, stone_id)
            return {
                "id": hold.hold_id,
                "denied": False,
                "until": items.format_timestamp(hold.until_ms),
            }

    def cancel_hold(self, hold_id: str) -> dict:
        """Release a hold and make its stone available again."""
        with self._lock:
            hold = self._state.holds.pop(hold_id, None)
            if hold is not None:
                position = hold.position
                self._state.hold_ids.pop(position, None)
            else:
                position = self._find_generated_hold(hold_id)
            if self._state.columns.availability[position] == ON_HOLD:
                self._set_availability(position, AVAILABLE)
            logger.info("Hold cancelled: hold_id=%s", hold_id)
            return {"id": hold_id, "denied": False, "until": None}

    def _find_generated_hold(self, hold_id: str) -> int:
        """Find the stone of a hold id that came with the generated catalogue."""
        not_found = CatalogueError(
            f"hold {hold_id!r} not found; pass a HoldId from a search or an id "
            "returned by create_hold"
        )
        try:
            value = uuid.UUID(hold_id).int
        except ValueError:
            raise not_found from None
        stone_id = items.uuid_text(
            (value >> 64) ^ items.HOLD_ID_MASK, value & (2**64 - 1)
        )
        position = self._search(
            stone_id, self._stone_sorted_hi, self._stone_order, self._initial.stone_lo
        )
        if (
            position is None
            or self._initial.availability[position] != ON_HOLD
            or self._state.columns.availability[position] != ON_HOLD
            or position in self._state.hold_ids
        ):
            raise not_found
        return position

    def create_order(self, offer_ids: list[str]) -> str:
        """Sell the stones of `offer_ids` in one order; all or none are sold."""
        with self._lock:
            positions = [self._find_offer(offer) for offer in offer_ids]
            columns = self._state.columns
            for offer, position in zip(offer_ids, positions, strict=True):
                if columns.availability[position] == SOLD:
                    raise CatalogueError(
                        f"offer {offer!r} is already sold; remove it from the order"
                    )
            if len(set(positions)) != len(positions):
                raise CatalogueError(
                    "an order lists the same offer twice; list it once"
                )

            order_id = str(uuid.uuid4())
            for position in positions:
                hold_id = self._state.hold_ids.pop(position, None)
                self._state.holds.pop(hold_id, None)
                self._set_availability(position, SOLD)
            self._state.orders[order_id] = positions
            logger.info(
                "Order created: order_id=%s stones=%d", order_id, len(positions)
            )
            return order_id

    # Mutations

    def mutate(self, counts: dict[str, int], seed: int | None = None) -> dict:
        """Apply price changes, new stones, sales and withdrawals now."""
        unknown = set(counts) - set(MUTATION_KINDS)
        if unknown:
            raise CatalogueError(
                f"mutation kinds {sorted(unknown)} are invalid; use {MUTATION_KINDS}"
            )
        with self._lock:
            rng = self._mutation_rng if seed is None else np.random.default_rng(seed)
            touched = {kind: [] for kind in MUTATION_KINDS}
            for _ in range(int(counts.get("price_changes") or 0)):
                touched["price_changes"].extend(self._change_price(rng))
            touched["new_stones"] = self._add_stones(
                rng, int(counts.get("new_stones") or 0)
            )
            for _ in range(int(counts.get("sold") or 0)):
                touched["sold"].extend(self._mark_sold(rng))
            for _ in range(int(counts.get("withdrawn") or 0)):
                touched["withdrawn"].extend(self._withdraw(rng))
            return touched

    def _change_price(self, rng: np.random.Generator) -> list[str]:
        position = self._pick_listed(rng)
        if position is None:
            return []
        columns = self._state.columns
        factor = rng.uniform(0.8, 1.2)
        columns.price_cents[position] = max(
            100, round(columns.price_cents[position] * factor)
        )
        columns.updated_ms[position] = _now_ms()
        self._clear_caches(orders="price")
        return [items.stone_id(columns, position)]

    def _add_stones(self, rng: np.random.Generator, count: int) -> list[str]:
        if count <= 0:
            return []
        columns = self._state.columns
        first = len(columns)
        first_serial = int(max(columns.serial.max(), columns.tie_rank.max())) + 1
        columns.extend(generate_new_stones(rng, count, _now_ms(), first_serial))
        added = []
        for position in range(first, first + count):
            stone = items.stone_id(columns, position)
            self._state.added_stones[stone] = position
            self._state.added_offers[items.offer_id(columns, position)] = position
            added.append(stone)
        self._clear_caches(orders="all")
        return added

    def _mark_sold(self, rng: np.random.Generator) -> list[str]:
        position = self._pick_listed(rng, unsold=True)
        if position is None:
            return []
        self._set_availability(position, SOLD)
        return [items.stone_id(self._state.columns, position)]

    def _withdraw(self, rng: np.random.Generator) -> list[str]:
        # A withdrawn stone disappears from every search; its updatedAt stays.
        position = self._pick_listed(rng)
        if position is None:
            return []
        self._state.columns.listed[position] = False
        self._clear_caches(orders="none")
        return [items.stone_id(self._state.columns, position)]

    def _pick_listed(
        self, rng: np.random.Generator, unsold: bool = False
    ) -> int | None:
        columns = self._state.columns
        # A few random draws find a candidate at once in a mostly listed
        # catalogue; the scan after them covers a mostly emptied one.
        for _ in range(32):
            position = int(rng.integers(0, len(columns)))
            if columns.listed[position] and not (
                unsold and columns.availability[position] == SOLD
            ):
                return position
        candidates = np.flatnonzero(
            columns.listed & ((columns.availability != SOLD) if unsold else True)
        )
        if len(candidates) == 0:
            return None
        return int(rng.choice(candidates))

    def _set_availability(self, position: int, availability: int) -> None:
        columns = self._state.columns
        columns.availability[position] = availability
        columns.updated_ms[position] = _now_ms()
        self._clear_caches(orders="none")

    # Lookups and caches

    def _build_lookup(self) -> None:
        """Index the generated stone and offer ids for binary search."""
        self._stone_order = np.argsort(self._initial.stone_hi, kind="stable")
        self._stone_sorted_hi = self._initial.stone_hi[self._stone_order]
        self._offer_order = np.argsort(self._initial.offer_hi, kind="stable")
        self._offer_sorted_hi = self._initial.offer_hi[self._offer_order]

    def _find_stone(self, stone_id: str) -> int:
        position = self._state.added_stones.get(stone_id)
        if position is None:
            position = self._search(
                stone_id,
                self._stone_sorted_hi,
                self._stone_order,
                self._initial.stone_lo,
            )
        if position is None or not self._state.columns.listed[position]:
            raise CatalogueError(
                f"stone {stone_id!r} not found; pass a diamond.id from a search"
            )
        return position

    def _find_offer(self, offer_id: str) -> int:
        position = self._state.added_offers.get(offer_id)
        if position is None and offer_id.startswith("DIAMOND/"):
            position = self._search(
                offer_id.removeprefix("DIAMOND/"),
                self._offer_sorted_hi,
                self._offer_order,
                self._initial.offer_lo,
            )
        if position is None or not self._state.columns.listed[position]:
            raise CatalogueError(
                f"offer {offer_id!r} not found; pass an item id (DIAMOND/<uuid>) "
                "from a search"
            )
        return position

    @staticmethod
    def _search(text, sorted_hi, order, lows) -> int | None:
        try:
            value = uuid.UUID(text).int
        except (ValueError, AttributeError, TypeError):
            return None
        high, low = np.uint64(value >> 64), np.uint64(value & (2**64 - 1))
        start = int(np.searchsorted(sorted_hi, high, side="left"))
        end = int(np.searchsorted(sorted_hi, high, side="right"))
        for index in range(start, end):
            if lows[order[index]] == low:
                return int(order[index])
        return None

    def _sorted_positions(self, order: dict | None) -> np.ndarray:
        order = order or filters.DEFAULT_ORDER
        key = (order.get("type") or "createdAt", order.get("direction") or "ASC")
        positions = self._order_cache.get(key)
        if positions is None:
            positions = filters.sort_positions(self._state.columns, order)
            self._order_cache[key] = positions
        return positions

    def _remember_match(self, key: str, positions: np.ndarray) -> None:
        self._match_cache[key] = positions
        self._match_cache_positions += len(positions)
        while (
            self._match_cache_positions > MATCH_CACHE_MAX_POSITIONS
            and len(self._match_cache) > 1
        ):
            _, evicted = self._match_cache.popitem(last=False)
            self._match_cache_positions -= len(evicted)

    def _clear_caches(self, orders: str) -> None:
        """Drop cached matches, and the sort orders that `orders` names.

        `orders` is "none" (availability or listing changed), "price" (a
        price changed, so only the createdAt orders stay valid) or "all".
        """
        self._match_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._match_cache_positions = 0
        if orders == "all":
            self._order_cache: dict[tuple[str, str], np.ndarray] = {}
        elif orders == "price":
            self._order_cache = {
                key: value
                for key, value in self._order_cache.items()
                if key[0] == "createdAt"
            }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
