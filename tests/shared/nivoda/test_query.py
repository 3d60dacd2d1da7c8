"""DiamondQuery inputs as sent to Nivoda."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.nivoda import DiamondOrder, DiamondQuery
from shared.nivoda.query import CaratRange, cents_to_dollars

FROM = datetime(2026, 12, 3, 1, 45, tzinfo=UTC)
TO = datetime(2026, 12, 4, 2, 0, 0, 123000, tzinfo=UTC)


def test_partition_converts_cents_exactly():
    query = DiamondQuery.for_partition(100010, 250099, FROM, TO)

    variables = query.to_variables()

    assert variables["dollar_value"] == {"from": 1000.1, "to": 2500.99}


def test_partition_without_upper_bound():
    variables = DiamondQuery.for_partition(5_000_000, None, FROM, TO).to_variables()

    assert variables["dollar_value"] == {"from": 50000.0}


def test_partition_formats_updated_range():
    variables = DiamondQuery.for_partition(0, 100, FROM, TO).to_variables()

    assert variables["updated"] == {
        "from": "2026-12-03T01:45:00.000Z",
        "to": "2026-12-04T02:00:00.123Z",
    }


def test_partition_converts_other_zones_to_utc():
    paris = timezone(timedelta(hours=1))
    start = datetime(2026, 12, 3, 2, 45, tzinfo=paris)

    variables = DiamondQuery.for_partition(0, 100, start, TO).to_variables()

    assert variables["updated"]["from"] == "2026-12-03T01:45:00.000Z"


def test_partition_keeps_base_filters():
    query = DiamondQuery.for_partition(
        0,
        100,
        FROM,
        TO,
        labgrown=False,
        shapes=["ROUND", "OVAL"],
        availability=["AVAILABLE"],
        exclude_fair_poor_cuts=True,
        hide_memo=True,
        has_image=True,
        sizes=[CaratRange(from_=0.3, to=1.5)],
    )

    variables = query.to_variables()

    assert variables["labgrown"] is False
    assert variables["shapes"] == ["ROUND", "OVAL"]
    assert variables["availability"] == ["AVAILABLE"]
    assert variables["excludeFairPoorCuts"] is True
    assert variables["hide_memo"] is True
    assert variables["has_image"] is True
    assert variables["sizes"] == [{"from": 0.3, "to": 1.5}]
    assert "has_v360" not in variables
    assert "dollar_per_carat" not in variables


def test_query_accepts_graphql_names():
    query = DiamondQuery.model_validate(
        {"excludeFairPoorCuts": True, "dollar_per_carat": {"from": 100, "to": 200}}
    )

    variables = query.to_variables()

    assert variables == {
        "excludeFairPoorCuts": True,
        "dollar_per_carat": {"from": 100.0, "to": 200.0},
    }


def test_query_rejects_unknown_filter():
    with pytest.raises(ValidationError):
        DiamondQuery(colour=["D"])


def test_partition_rejects_reversed_prices():
    with pytest.raises(ValueError, match="reversed"):
        DiamondQuery.for_partition(200, 100, FROM, TO)


def test_partition_rejects_reversed_dates():
    with pytest.raises(ValueError, match="reversed"):
        DiamondQuery.for_partition(0, 100, TO, FROM)


def test_partition_rejects_naive_datetime():
    with pytest.raises(ValidationError, match="time zone"):
        DiamondQuery.for_partition(0, 100, datetime(2026, 1, 1), datetime(2026, 1, 2))


def test_cents_to_dollars_rejects_float():
    with pytest.raises(TypeError):
        cents_to_dollars(100.5)


def test_cents_to_dollars_is_exact():
    assert str(cents_to_dollars(100010)) == "1000.10"


def test_order_defaults_to_created_ascending():
    assert DiamondOrder().to_variables() == {"type": "createdAt", "direction": "ASC"}


def test_order_rejects_unknown_type():
    with pytest.raises(ValidationError):
        DiamondOrder(type="carat")
