"""Price partitions: no gap, no overlap, counts that add up to the total."""

from __future__ import annotations

import bisect
import itertools
import random

import pytest

from shared.partitioning import plan_partitions


class PriceCounter:
    """Count stones by inclusive price bounds, as the supplier's count query does."""

    def __init__(self, prices: list[int]) -> None:
        self.prices = sorted(prices)

    def __call__(self, low: int, high: int | None) -> int:
        start = bisect.bisect_left(self.prices, low)
        end = (
            len(self.prices) if high is None else bisect.bisect_right(self.prices, high)
        )
        return end - start


def lognormal_prices(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [max(100, int(rng.lognormvariate(13, 1.2))) for _ in range(count)]


def assert_covers_axis(plan) -> None:
    partitions = plan.partitions
    assert partitions[0].price_min_cents == 0
    assert partitions[-1].price_max_cents is None
    for before, after in itertools.pairwise(partitions):
        assert before.price_max_cents is not None
        assert after.price_min_cents == before.price_max_cents + 1
    assert [p.partition_id for p in partitions] == list(range(len(partitions)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_partitions_cover_axis_and_total(seed):
    counter = PriceCounter(lognormal_prices(20_000, seed))

    plan = plan_partitions(counter, 20_000, target_stones=500, max_partitions=1000)

    assert_covers_axis(plan)
    assert sum(p.expected_count for p in plan.partitions) == 20_000
    for partition in plan.partitions:
        real = counter(partition.price_min_cents, partition.price_max_cents)
        assert partition.expected_count == real, partition
        assert partition.expected_count <= 500, partition


def test_partitions_respect_maximum():
    counter = PriceCounter(lognormal_prices(20_000, 4))

    plan = plan_partitions(counter, 20_000, target_stones=50, max_partitions=10)

    assert len(plan.partitions) <= 10
    assert_covers_axis(plan)
    assert sum(p.expected_count for p in plan.partitions) == 20_000


def test_partitions_empty_run():
    plan = plan_partitions(PriceCounter([]), 0, target_stones=500, max_partitions=10)

    assert [
        (p.price_min_cents, p.price_max_cents, p.expected_count)
        for p in plan.partitions
    ] == [(0, None, 0)]


def test_partitions_one_price_not_split_forever():
    counter = PriceCounter([123_456] * 3000)

    plan = plan_partitions(counter, 3000, target_stones=100, max_partitions=1000)

    assert_covers_axis(plan)
    assert sum(p.expected_count for p in plan.partitions) == 3000
    assert max(p.expected_count for p in plan.partitions) == 3000
    assert plan.count_queries < 200


def test_partitions_open_top_bucket():
    prices = [10**11 + i for i in range(1000)] + [50_000] * 10
    counter = PriceCounter(prices)

    plan = plan_partitions(counter, len(prices), target_stones=200, max_partitions=1000)

    assert_covers_axis(plan)
    assert sum(p.expected_count for p in plan.partitions) == len(prices)
    for partition in plan.partitions:
        assert partition.expected_count == counter(
            partition.price_min_cents, partition.price_max_cents
        )


def test_partitions_counts_shrinking_mid_scan():
    # Stones leave the run's window while it is scanned (sold, repriced).
    prices = lognormal_prices(5000, 5)
    rng = random.Random(5)

    def shrinking_count(low: int, high: int | None) -> int:
        if prices and rng.random() < 0.3:
            prices.pop(rng.randrange(len(prices)))
        return PriceCounter(prices)(low, high)

    plan = plan_partitions(
        shrinking_count, 5000, target_stones=300, max_partitions=1000
    )

    assert_covers_axis(plan)
    assert all(p.expected_count >= 0 for p in plan.partitions)
    assert sum(p.expected_count for p in plan.partitions) == 5000


def test_partitions_use_few_count_queries():
    counter = PriceCounter(lognormal_prices(50_000, 6))

    plan = plan_partitions(counter, 50_000, target_stones=1000, max_partitions=1000)

    # 22 start buckets plus about two queries per partition for the splits.
    assert plan.count_queries <= 22 + 4 * len(plan.partitions)
