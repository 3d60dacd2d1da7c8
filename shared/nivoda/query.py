"""Search filters and ordering for `diamonds_by_query`.

Python names are snake_case. `to_variables()` produces the GraphQL input with
the supplier's names (`excludeFairPoorCuts`, `from`), leaving out unset
filters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

OrderType = Literal[
    "createdAt",
    "price",
    "price_per_carat",
    "size",
    "color",
    "clarity",
    "cut",
    "discount",
]


def format_graphql_datetime(value: datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC with milliseconds and `Z`."""
    if value.tzinfo is None:
        raise ValueError(
            f"datetime {value.isoformat()} has no time zone; pass an aware "
            "datetime, for example with tzinfo=datetime.UTC"
        )
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def cents_to_dollars(cents: int) -> Decimal:
    """Convert integer cents to an exact dollar amount."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"price in cents must be an int, got {cents!r}")
    return Decimal(cents).scaleb(-2)


class _FilterModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, frozen=True
    )


class CaratRange(_FilterModel):
    """Carat bounds, both inclusive. A missing bound leaves that side open."""

    from_: Decimal | None = Field(default=None, alias="from")
    to: Decimal | None = None

    @field_serializer("from_", "to")
    def _serialize_bound(self, value: Decimal | None) -> float | None:
        return None if value is None else float(value)


class DollarRange(_FilterModel):
    """US dollar bounds, both inclusive. A missing bound leaves that side open."""

    from_: Decimal | None = Field(default=None, alias="from")
    to: Decimal | None = None

    @field_serializer("from_", "to")
    def _serialize_bound(self, value: Decimal | None) -> float | None:
        # float(Decimal("1234.56")) prints back as 1234.56, so a cent amount
        # survives the trip through JSON unchanged.
        return None if value is None else float(value)


class DateTimeRange(_FilterModel):
    """Bounds on the supplier's `updatedAt`, as aware datetimes."""

    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None

    @field_validator("from_", "to")
    @classmethod
    def _require_time_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            format_graphql_datetime(value)
        return value

    @field_serializer("from_", "to")
    def _serialize_bound(self, value: datetime | None) -> str | None:
        return None if value is None else format_graphql_datetime(value)


class DiamondOrder(_FilterModel):
    """Sort order of a search: one field and a direction."""

    type: OrderType = "createdAt"
    direction: Literal["ASC", "DESC"] = "ASC"

    def to_variables(self) -> dict[str, str]:
        """Return the GraphQL `DiamondOrder` input."""
        return {"type": self.type, "direction": self.direction}


class DiamondQuery(_FilterModel):
    """The `DiamondQuery` input of `diamonds_by_query` and its count."""

    shapes: tuple[str, ...] | None = None
    sizes: tuple[CaratRange, ...] | None = None
    labgrown: bool | None = None
    dollar_value: DollarRange | None = None
    dollar_per_carat: DollarRange | None = None
    has_image: bool | None = None
    has_v360: bool | None = None
    availability: tuple[str, ...] | None = None
    exclude_fair_poor_cuts: bool | None = Field(
        default=None, alias="excludeFairPoorCuts"
    )
    hide_memo: bool | None = None
    updated: DateTimeRange | None = None

    @classmethod
    def for_partition(
        cls,
        price_min_cents: int,
        price_max_cents: int | None,
        updated_from: datetime,
        updated_to: datetime,
        **base_filters: Any,
    ) -> DiamondQuery:
        """Build the query of one price partition of a run.

        Both price bounds are inclusive, as `dollar_value` is, so adjacent
        partitions must not share a cent. `price_max_cents=None`
        leaves the top open. `base_filters` are the other fields of this model.
        """
        if price_max_cents is not None and price_max_cents < price_min_cents:
            raise ValueError(
                f"partition price bounds are reversed: min {price_min_cents} "
                f"cents > max {price_max_cents} cents"
            )
        if price_min_cents < 0:
            raise ValueError(f"price_min_cents must be >= 0, got {price_min_cents}")
        if updated_to < updated_from:
            raise ValueError(
                f"updated range is reversed: from {updated_from.isoformat()} "
                f"> to {updated_to.isoformat()}"
            )

        dollar_value = DollarRange(
            from_=cents_to_dollars(price_min_cents),
            to=None if price_max_cents is None else cents_to_dollars(price_max_cents),
        )
        updated = DateTimeRange(from_=updated_from, to=updated_to)
        return cls(dollar_value=dollar_value, updated=updated, **base_filters)

    def to_variables(self) -> dict[str, Any]:
        """Return the GraphQL `DiamondQuery` input, without unset filters."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
