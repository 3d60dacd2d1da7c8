"""Cut the price axis into partitions of similar stone counts.

The scan uses count queries only. A bucket is split in two by counting its
lower half and deriving the upper half by subtraction, so the partition counts
always add up to the total that was counted first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# Price axis in cents. The top bucket is open-ended; for splitting it is
# treated as ending at this price (ten billion dollars).
_TOP_CENTS = 10**12
_START_EDGES_CENTS = [0] + [
    mantissa * 10**exponent
    for exponent in range(4, 11)  # $100 .. $100M
    for mantissa in (1, 2, 5)
]

CountFn = Callable[[int, int | None], int]


@dataclass(frozen=True)
class PriceBucket:
    price_min_cents: int
    price_max_cents: int | None  # inclusive; None means no upper bound
    count: int


@dataclass(frozen=True)
class Partition:
    partition_id: int
    price_min_cents: int
    price_max_cents: int | None
    expected_count: int


@dataclass(frozen=True)
class PartitionPlan:
    total: int
    partitions: list[Partition]
    buckets: list[PriceBucket]
    count_queries: int


def plan_partitions(
    count: CountFn, total: int, *, target_stones: int, max_partitions: int
) -> PartitionPlan:
    """Scan density with `count(min_cents, max_cents)` and merge buckets into partitions."""
    target = max(target_stones, math.ceil(total / max_partitions)) if total else 1
    counter = _CountingFn(count)
    buckets = _scan_buckets(counter, total, target)
    partitions = _merge_buckets(buckets, target)
    while len(partitions) > max_partitions:
        # Greedy merging can leave up to twice total/target groups.
        target = math.ceil(target * 1.25)
        partitions = _merge_buckets(buckets, target)
    return PartitionPlan(total, partitions, buckets, counter.calls)


class _CountingFn:
    def __init__(self, count: CountFn) -> None:
        self._count = count
        self.calls = 0

    def __call__(self, low: int, high: int | None) -> int:
        self.calls += 1
        return self._count(low, high)


def _scan_buckets(count: CountFn, total: int, target: int) -> list[PriceBucket]:
    if total == 0:
        return [PriceBucket(0, None, 0)]
    coarse = _count_start_buckets(count, total)
    buckets: list[PriceBucket] = []
    for bucket in coarse:
        buckets.extend(_split_dense(count, bucket, target))
    return buckets


def _count_start_buckets(count: CountFn, total: int) -> list[PriceBucket]:
    buckets = []
    counted = 0
    for low, next_low in zip(_START_EDGES_CENTS, _START_EDGES_CENTS[1:]):
        if counted == total:
            buckets.append(PriceBucket(low, next_low - 1, 0))
            continue
        n = count(low, next_low - 1)
        buckets.append(PriceBucket(low, next_low - 1, n))
        counted += n
    # The open top bucket takes the rest, so the buckets add up to the total.
    buckets.append(PriceBucket(_START_EDGES_CENTS[-1], None, max(total - counted, 0)))
    return buckets


def _split_dense(count: CountFn, bucket: PriceBucket, target: int) -> list[PriceBucket]:
    high = bucket.price_max_cents if bucket.price_max_cents is not None else _TOP_CENTS
    if bucket.count <= target or high <= bucket.price_min_cents:
        return [bucket]
    middle = (bucket.price_min_cents + high) // 2
    lower_count = count(bucket.price_min_cents, middle)
    lower = PriceBucket(bucket.price_min_cents, middle, lower_count)
    upper = PriceBucket(middle + 1, bucket.price_max_cents, bucket.count - lower_count)
    return _split_dense(count, lower, target) + _split_dense(count, upper, target)


def _merge_buckets(buckets: list[PriceBucket], target: int) -> list[Partition]:
    """Join neighbouring buckets while the partition stays within the target."""
    groups: list[list[PriceBucket]] = [[]]
    size = 0
    for bucket in buckets:
        if groups[-1] and size + bucket.count > target:
            groups.append([])
            size = 0
        groups[-1].append(bucket)
        size += bucket.count
    return [
        Partition(
            partition_id=index,
            price_min_cents=group[0].price_min_cents,
            price_max_cents=group[-1].price_max_cents,
            expected_count=sum(b.count for b in group),
        )
        for index, group in enumerate(groups)
    ]
