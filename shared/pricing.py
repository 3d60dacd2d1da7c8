"""Pricing rules: validation, changes, previews and re-pricing of the inventory.

The first active rule in priority order (ties broken by id) whose match
fields all accept a stone sets its priced price, feed price x markup ratio
rounded half up to the cent, and its rating. The retail price per carat,
`priced_price_per_carat_cents`, is a generated column (migration 0007), so it
changes with the priced price in the statement that sets it. Which rule
matches which stone is defined once, by the SQL function
`pricing_rule_matches` (migration 0002_pricing_match.sql); consolidation,
re-pricing and previews all use it.

Every change re-prices the stored inventory in the caller's transaction,
with one set-based UPDATE, so a committed change never leaves stale prices.
Changes take a SHARE ROW EXCLUSIVE lock on `pricing_rules`: they run one at
a time, and wait for consolidation batches, which hold a SHARE lock on the
table while they price stones.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import psycopg
from psycopg.rows import dict_row
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from shared.mapping import KNOWN_SHAPES

log = logging.getLogger(__name__)

_FEED_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
_MATCH_FIELDS = (
    "carat_min",
    "carat_max",
    "shapes",
    "lab_grown",
    "feed",
    "feed_price_min_cents",
    "feed_price_max_cents",
)
_RULE_FIELDS = (
    "priority",
    *_MATCH_FIELDS,
    "markup_ratio",
    "rating",
    "active",
    "description",
)


class PricingRuleError(ValueError):
    """A rule that does not exist, or a change that is not allowed."""


@dataclass(frozen=True)
class RepriceResult:
    """Stones whose priced price changed in one re-pricing, and its duration."""

    changed: int
    seconds: float


class PricingRuleInput(BaseModel):
    """A pricing rule as a client sends it. An empty match field matches anything."""

    model_config = ConfigDict(extra="forbid")

    priority: StrictInt = Field(ge=-(2**31), le=2**31 - 1, description="lower wins")
    carat_min: Decimal | None = Field(None, ge=0, le=Decimal("99999.999"),
                                      decimal_places=3)
    carat_max: Decimal | None = Field(None, ge=0, le=Decimal("99999.999"),
                                      decimal_places=3)
    shapes: list[str] | None = Field(None, max_length=len(KNOWN_SHAPES))
    lab_grown: bool | None = None
    feed: str | None = Field(None, pattern=_FEED_PATTERN)
    feed_price_min_cents: StrictInt | None = Field(None, ge=0, le=2**63 - 1)
    feed_price_max_cents: StrictInt | None = Field(None, ge=0, le=2**63 - 1)
    markup_ratio: Decimal = Field(gt=0, le=Decimal("9999.9999"), decimal_places=4)
    rating: StrictInt = Field(ge=1, le=10)
    active: bool = True
    description: str | None = Field(None, max_length=500)

    @field_validator("shapes")
    @classmethod
    def _normalise_shapes(cls, shapes: list[str] | None) -> list[str] | None:
        if not shapes:
            return None
        normalised = []
        for shape in shapes:
            name = " ".join(shape.upper().split())
            if name not in KNOWN_SHAPES:
                raise ValueError(
                    f"shape {shape!r} is not a known shape; use one of "
                    f"{', '.join(sorted(KNOWN_SHAPES))}"
                )
            if name not in normalised:
                normalised.append(name)
        return normalised

    @model_validator(mode="after")
    def _check_ranges(self) -> PricingRuleInput:
        if _is_inverted(self.carat_min, self.carat_max):
            raise ValueError(
                f"carat_min {self.carat_min} is above carat_max {self.carat_max}; "
                "swap them or leave one empty"
            )
        if _is_inverted(self.feed_price_min_cents, self.feed_price_max_cents):
            raise ValueError(
                f"feed_price_min_cents {self.feed_price_min_cents} is above "
                f"feed_price_max_cents {self.feed_price_max_cents}; swap them or "
                "leave one empty"
            )
        return self

    def is_catch_all(self) -> bool:
        """Return whether the rule is active and matches every stone."""
        return self.active and all(
            getattr(self, name) is None for name in _MATCH_FIELDS
        )


def _is_inverted(low, high) -> bool:
    return low is not None and high is not None and low > high


def price_cents(feed_price_cents: int, markup_ratio: Decimal) -> int:
    """Return feed price x markup in cents, rounded half up in exact decimals."""
    priced = Decimal(feed_price_cents) * Decimal(markup_ratio)
    return int(priced.to_integral_value(rounding=ROUND_HALF_UP))


def price_per_carat_cents(price_cents: int, carats: Decimal) -> int:
    """Return price / carats in cents, rounded half up in exact fractions.

    The generated column `priced_price_per_carat_cents` stores this figure
    for the priced price of every stone with more than 0 carats.
    """
    return math.floor(Fraction(price_cents) / Fraction(carats) + Fraction(1, 2))


# Reading rules


def list_rules(conn: psycopg.Connection) -> list[dict]:
    """Return every rule, active or not, in the order they apply."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from pricing_rules order by priority, id").fetchall()


def get_rule(conn: psycopg.Connection, rule_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from pricing_rules where id = %s", (rule_id,)
        ).fetchone()


# Changing rules


def create_rule(
    conn: psycopg.Connection, rule: PricingRuleInput
) -> tuple[dict, RepriceResult]:
    """Insert a rule and re-price the inventory, in one transaction."""
    with conn.transaction():
        _lock_rules(conn)
        created = _insert_rule(conn, rule)
        result = reprice(conn)
    log.info("pricing rule created, rule_id=%s changed=%s seconds=%s",
             created["id"], result.changed, result.seconds)
    return created, result


def update_rule(
    conn: psycopg.Connection, rule_id: int, rule: PricingRuleInput
) -> tuple[dict, RepriceResult]:
    """Replace a rule's fields and re-price the inventory, in one transaction."""
    with conn.transaction():
        _lock_rules(conn)
        _check_keeps_catch_all(conn, rule_id, rule.is_catch_all())
        updated = _update_rule(conn, rule_id, rule)
        result = reprice(conn)
    log.info("pricing rule updated, rule_id=%s changed=%s seconds=%s",
             rule_id, result.changed, result.seconds)
    return updated, result


def deactivate_rule(
    conn: psycopg.Connection, rule_id: int
) -> tuple[dict, RepriceResult]:
    """Deactivate a rule and re-price the inventory, in one transaction."""
    with conn.transaction():
        _lock_rules(conn)
        _check_keeps_catch_all(conn, rule_id, False)
        with conn.cursor(row_factory=dict_row) as cur:
            deactivated = cur.execute(
                "update pricing_rules set active = false, updated_at = now()"
                " where id = %s returning *",
                (rule_id,),
            ).fetchone()
        result = reprice(conn)
    log.info("pricing rule deactivated, rule_id=%s changed=%s seconds=%s",
             rule_id, result.changed, result.seconds)
    return deactivated, result


def _lock_rules(conn: psycopg.Connection) -> None:
    conn.execute("lock table pricing_rules in share row exclusive mode")


def _insert_rule(conn: psycopg.Connection, rule: PricingRuleInput) -> dict:
    names = ", ".join(_RULE_FIELDS)
    placeholders = ", ".join(f"%({name})s" for name in _RULE_FIELDS)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"insert into pricing_rules ({names}) values ({placeholders}) returning *",
            rule.model_dump(include=set(_RULE_FIELDS)),
        ).fetchone()


def _update_rule(conn: psycopg.Connection, rule_id: int, rule: PricingRuleInput) -> dict:
    assignments = ", ".join(f"{name} = %({name})s" for name in _RULE_FIELDS)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"update pricing_rules set {assignments}, updated_at = now()"
            " where id = %(rule_id)s returning *",
            {**rule.model_dump(include=set(_RULE_FIELDS)), "rule_id": rule_id},
        ).fetchone()


def _check_keeps_catch_all(
    conn: psycopg.Connection, rule_id: int, stays_catch_all: bool
) -> None:
    """Raise if the change leaves no active rule that matches every stone."""
    current = get_rule(conn, rule_id)
    if current is None:
        raise PricingRuleError(
            f"pricing rule {rule_id} not found; list the rules to find its id"
        )
    if stays_catch_all or not _row_is_catch_all(current):
        return
    others = conn.execute(
        f"select count(*) from pricing_rules where id <> %s and {_CATCH_ALL_SQL}",
        (rule_id,),
    ).fetchone()[0]
    if others == 0:
        raise PricingRuleError(
            f"pricing rule {rule_id} is the last active rule that matches every "
            "stone, so deactivating or narrowing it would leave stones without a "
            "price; create another rule with no match fields first"
        )


_CATCH_ALL_SQL = (
    "active and carat_min is null and carat_max is null"
    " and (shapes is null or cardinality(shapes) = 0) and lab_grown is null"
    " and feed is null and feed_price_min_cents is null"
    " and feed_price_max_cents is null"
)


def _row_is_catch_all(row: dict) -> bool:
    return row["active"] and all(
        not row[name] if name == "shapes" else row[name] is None
        for name in _MATCH_FIELDS
    )


# Re-pricing and previews

# The rule that prices each stone: the first match by priority, then id.
_FIRST_MATCHING_RULE = """
    cross join lateral (
        select pr.id, pr.markup_ratio, pr.rating from pricing_rules pr
        where pricing_rule_matches(pr, d.feed, d.carats, d.shape, d.lab_grown,
                                   d.feed_price_cents)
        order by pr.priority, pr.id limit 1) r
"""

_REPRICE = f"""
with priced as (
    select d.id, d.priced_price_cents as old_price_cents, r.id as rule_id,
           r.markup_ratio, r.rating,
           round(d.feed_price_cents * r.markup_ratio)::bigint as price_cents
    from diamonds d {_FIRST_MATCHING_RULE}
), updated as (
    update diamonds d set priced_price_cents = p.price_cents,
        markup_ratio = p.markup_ratio, rating = p.rating,
        pricing_rule_id = p.rule_id, updated_at = now()
    from priced p
    where d.id = p.id
      and (d.priced_price_cents, d.markup_ratio, d.rating, d.pricing_rule_id)
          is distinct from (p.price_cents, p.markup_ratio, p.rating, p.rule_id)
    returning p.old_price_cents, p.price_cents
)
select count(*) filter (where old_price_cents <> price_cents) from updated
"""

_PREVIEW = f"""
select
    count(*) filter (where pricing_rule_matches(t, d.feed, d.carats, d.shape,
                                                d.lab_grown, d.feed_price_cents))
        as matched,
    count(*) filter (where r.id = t.id) as priced_by_rule,
    count(*) filter (where new_price_cents <> d.priced_price_cents) as changed,
    coalesce(sum(new_price_cents - d.priced_price_cents), 0)::bigint
        as total_change_cents,
    coalesce(round(avg(new_price_cents - d.priced_price_cents)
                   filter (where new_price_cents <> d.priced_price_cents)), 0)::bigint
        as average_change_cents
from diamonds d
{_FIRST_MATCHING_RULE}
cross join lateral (
    select round(d.feed_price_cents * r.markup_ratio)::bigint as new_price_cents) n
join pricing_rules t on t.id = %(rule_id)s
"""


def reprice(conn: psycopg.Connection) -> RepriceResult:
    """Re-price every stored stone with the current rules, set-based.

    Only rows whose price, markup, rating or rule changes are written.
    Returns how many stones changed price.
    """
    started = time.monotonic()
    _turn_off_jit(conn)
    changed = conn.execute(_REPRICE).fetchone()[0]
    result = RepriceResult(changed, round(time.monotonic() - started, 3))
    log.info("inventory re-priced, changed=%s seconds=%s", changed, result.seconds)
    return result


def _turn_off_jit(conn: psycopg.Connection) -> None:
    # JIT compilation of these statements takes most of a second, and the
    # compiled code saves less than that even on a million stones.
    conn.execute("set local jit = off")


def preview_rule(
    conn: psycopg.Connection, rule: PricingRuleInput, rule_id: int | None = None
) -> dict:
    """Return what saving `rule` (new, or replacing `rule_id`) would change.

    The rule is written and measured inside a transaction that is always
    rolled back, with the same statements that saving uses.
    """
    with conn.transaction(force_rollback=True):
        if rule_id is None:
            saved = _insert_rule(conn, rule)
        else:
            _check_keeps_catch_all(conn, rule_id, rule.is_catch_all())
            saved = _update_rule(conn, rule_id, rule)
        _turn_off_jit(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            figures = cur.execute(_PREVIEW, {"rule_id": saved["id"]}).fetchone()
    return {
        "matched": figures["matched"],
        "priced_by_rule": figures["priced_by_rule"],
        "changed": figures["changed"],
        "total_change_cents": figures["total_change_cents"],
        "average_change_cents": figures["average_change_cents"],
    }
