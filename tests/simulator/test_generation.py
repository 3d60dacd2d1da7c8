import csv
import gzip

import numpy as np
import pytest

from simulator import items
from simulator.generation import (
    DATA_PATH,
    REAL_STONE_COUNT,
    SHAPES,
    generate_stones,
    load_real_rows,
)


def read_csv_rows(count: int) -> list[dict]:
    with gzip.open(DATA_PATH, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        return [next(reader) for _ in range(count)]


def test_real_rows_loaded_completely():
    rows = load_real_rows()

    assert len(rows["carat"]) == REAL_STONE_COUNT
    assert rows["price"].min() == 326
    assert rows["price"].max() == 18_823


def test_first_stones_are_real_rows():
    columns = generate_stones(500, seed=3)
    source = read_csv_rows(500)

    built = [items.build_item(columns, position, None) for position in range(500)]

    assert [item["price"] for item in built] == [
        int(row["price"]) * 100 for row in source
    ]
    assert [item["diamond"]["certificate"]["carats"] for item in built] == [
        float(row["carat"]) for row in source
    ]
    assert {item["diamond"]["certificate"]["shape"] for item in built} == {"ROUND"}
    assert not any(item["diamond"]["certificate"]["labgrown"] for item in built)


def test_cut_grades_mapped():
    columns = generate_stones(REAL_STONE_COUNT, seed=3)
    cuts = {
        items.build_item(columns, p, None)["diamond"]["certificate"]["cut"]
        for p in range(300)
    }

    assert cuts <= {"FAIR", "GOOD", "VERY GOOD", "EXCELLENT", "IDEAL"}
    assert "IDEAL" in cuts


def test_generation_repeats_for_seed():
    first = generate_stones(60_000, seed=9)
    second = generate_stones(60_000, seed=9)
    other = generate_stones(60_000, seed=10)

    assert np.array_equal(first.price_cents, second.price_cents)
    assert np.array_equal(first.stone_hi, second.stone_hi)
    assert np.array_equal(first.created_ms, second.created_ms)
    assert not np.array_equal(first.stone_hi, other.stone_hi)


def test_created_at_has_ties():
    columns = generate_stones(REAL_STONE_COUNT, seed=1)

    assert len(np.unique(columns.created_ms)) < REAL_STONE_COUNT // 2
    assert np.all(columns.created_ms % 3_600_000 == 0)
    assert np.all(columns.updated_ms >= columns.created_ms)


@pytest.fixture(scope="module")
def million_stones():
    return generate_stones(1_000_000, seed=2)


def test_million_stones_generated(million_stones):
    assert len(million_stones) == 1_000_000
    assert len(np.unique(million_stones.serial)) == 1_000_000
    assert len(np.unique(million_stones.stone_hi)) == 1_000_000


def test_million_stones_within_real_ranges(million_stones):
    synthetic = slice(REAL_STONE_COUNT, None)

    assert million_stones.carat[synthetic].min() >= 0.2
    assert million_stones.carat[synthetic].max() <= 5.01
    assert million_stones.price_cents[synthetic].min() >= 32_600
    assert million_stones.price_cents[synthetic].max() <= 1_882_300


def test_million_stones_shapes_and_lab_grown(million_stones):
    synthetic = slice(REAL_STONE_COUNT, None)
    shares = np.bincount(million_stones.shape[synthetic], minlength=len(SHAPES))
    shares = shares / shares.sum()

    assert 0.25 < million_stones.labgrown[synthetic].mean() < 0.35
    assert 0.5 < shares[SHAPES.index("ROUND")] < 0.6
    assert np.all(shares > 0)
    assert not million_stones.labgrown[:REAL_STONE_COUNT].any()


def test_million_stones_ids_are_uuid4(million_stones):
    item = items.build_item(million_stones, 999_999, None)

    assert item["diamond"]["id"][14] == "4"
    assert item["id"].startswith("DIAMOND/")


def test_certificate_numbers_unique():
    columns = generate_stones(5000, seed=4)

    numbers = {items.cert_number(columns, position) for position in range(5000)}

    assert len(numbers) == 5000


def test_negative_stone_count_rejected():
    with pytest.raises(ValueError, match="negative"):
        generate_stones(-1, seed=0)
