from datetime import datetime, timedelta

import httpx
import pytest
from supplier_client import SupplierClient

from simulator import Simulator
from simulator.generation import REAL_STONE_COUNT

# Real rows plus 3,000 derived stones, so shapes and lab grown vary.
STONES = REAL_STONE_COUNT + 3000


@pytest.fixture(scope="module")
def mixed_simulator():
    with Simulator(stones=STONES, seed=11) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def reference_items(mixed_simulator):
    catalogue = mixed_simulator.catalogue
    return catalogue.build_items(range(catalogue.size))


@pytest.fixture
def mixed_client(mixed_simulator):
    with httpx.Client(timeout=30) as http:
        yield SupplierClient(mixed_simulator, http)


def certificate(item):
    return item["diamond"]["certificate"]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


FILTER_CASES = [
    (
        {"shapes": ["OVAL", "PEAR"]},
        lambda i: certificate(i)["shape"] in ("OVAL", "PEAR"),
    ),
    (
        {"sizes": [{"from": 1.0, "to": 1.01}, {"from": 2.0, "to": 2.0}]},
        lambda i: (
            1.0 <= certificate(i)["carats"] <= 1.01 or certificate(i)["carats"] == 2.0
        ),
    ),
    ({"labgrown": True}, lambda i: certificate(i)["labgrown"]),
    ({"labgrown": False}, lambda i: not certificate(i)["labgrown"]),
    (
        {"dollar_value": {"from": 5000, "to": 5100}},
        lambda i: 500_000 <= i["price"] <= 510_000,
    ),
    ({"dollar_value": {"from": 18000}}, lambda i: i["price"] >= 1_800_000),
    ({"dollar_value": {"to": 400}}, lambda i: i["price"] <= 40_000),
    (
        {"dollar_per_carat": {"from": 4000, "to": 4100}},
        lambda i: 400_000 <= i["price"] / certificate(i)["carats"] <= 410_000,
    ),
    ({"has_image": False}, lambda i: i["diamond"]["image"] is None),
    ({"has_v360": True}, lambda i: i["diamond"]["v360"] is not None),
    (
        {"availability": ["ON_HOLD", "MEMO"]},
        lambda i: i["diamond"]["availability"] in ("ON_HOLD", "MEMO"),
    ),
    ({"excludeFairPoorCuts": True}, lambda i: certificate(i)["cut"] != "FAIR"),
    ({"hide_memo": True}, lambda i: i["diamond"]["availability"] != "MEMO"),
    (
        {"updated": {"from": "2025-02-01T00:00:00Z", "to": "2025-02-03T12:00:00Z"}},
        lambda i: (
            parse_time("2025-02-01T00:00:00Z")
            <= parse_time(i["updatedAt"])
            <= parse_time("2025-02-03T12:00:00Z")
        ),
    ),
    (
        {"color": ["D"], "clarity": ["IF"]},
        lambda i: certificate(i)["color"] == "D" and certificate(i)["clarity"] == "IF",
    ),
    ({"lab": ["HRD"]}, lambda i: certificate(i)["lab"] == "HRD"),
    (
        {
            "shapes": ["ROUND"],
            "labgrown": True,
            "dollar_value": {"from": 1000, "to": 3000},
        },
        lambda i: (
            certificate(i)["shape"] == "ROUND"
            and certificate(i)["labgrown"]
            and 100_000 <= i["price"] <= 300_000
        ),
    ),
]


@pytest.mark.parametrize(("query", "predicate"), FILTER_CASES)
def test_filter_count_matches_reference(
    mixed_client, reference_items, query, predicate
):
    expected = sum(1 for item in reference_items if predicate(item))

    count = mixed_client.count(query)

    assert 0 < expected < len(reference_items)
    assert count == expected


@pytest.mark.parametrize(("query", "predicate"), FILTER_CASES)
def test_filter_page_items_match(mixed_client, query, predicate):
    items = mixed_client.page(query, 0)["items"]

    assert items
    assert all(predicate(item) for item in items)


def test_filter_small_result_lists_every_stone(mixed_client, reference_items):
    query = {"color": ["D"], "clarity": ["IF"]}
    expected = {
        item["diamond"]["id"]
        for item in reference_items
        if certificate(item)["color"] == "D" and certificate(item)["clarity"] == "IF"
    }

    served = {item["diamond"]["id"] for item in mixed_client.all_items(query)}

    assert served == expected


@pytest.fixture(scope="module")
def odd_cents_item(reference_items):
    return next(item for item in reference_items if item["price"] % 100)


@pytest.mark.parametrize(
    ("lower_cents", "upper_cents", "included"),
    [(0, 0, True), (1, 100, False), (-100, -1, False), (-100, 0, True), (0, 100, True)],
)
def test_dollar_value_bounds_inclusive_in_cents(
    mixed_client, odd_cents_item, lower_cents, upper_cents, included
):
    price = odd_cents_item["price"]
    bounds = {"from": (price + lower_cents) / 100, "to": (price + upper_cents) / 100}

    served = {
        item["diamond"]["id"]
        for item in mixed_client.all_items({"dollar_value": bounds})
    }

    assert (odd_cents_item["diamond"]["id"] in served) is included


@pytest.mark.parametrize(
    ("from_offset_seconds", "to_offset_seconds", "included"),
    [(0, 0, True), (1, 10, False), (-10, -1, False), (-0.001, 0.001, True)],
)
def test_updated_window_inclusive(
    mixed_client, reference_items, from_offset_seconds, to_offset_seconds, included
):
    stone = reference_items[100]
    updated = parse_time(stone["updatedAt"])
    window = {
        "from": (updated + timedelta(seconds=from_offset_seconds)).isoformat(),
        "to": (updated + timedelta(seconds=to_offset_seconds)).isoformat(),
    }

    served = {
        item["diamond"]["id"] for item in mixed_client.all_items({"updated": window})
    }

    assert (stone["diamond"]["id"] in served) is included


def test_updated_invalid_date_rejected(mixed_client):
    body = mixed_client.post(
        "query($q: DiamondQuery!) { diamonds_by_query_count(query: $q) }",
        {"q": {"updated": {"from": "yesterday"}}},
    ).json()

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "yesterday" in body["errors"][0]["message"]


def test_partitions_by_price_cover_count(mixed_client):
    bounds = [(0, 999.99), (1000, 4999.99), (5000, 100_000)]

    counts = [
        mixed_client.count({"dollar_value": {"from": low, "to": high}})
        for low, high in bounds
    ]

    assert sum(counts) == STONES


@pytest.mark.parametrize("order_type", ["price", "price_per_carat", "size", "discount"])
def test_order_types_sort_items(mixed_client, order_type):
    order = {"type": order_type, "direction": "ASC"}

    items = mixed_client.page({}, 0, 50, order)["items"]
    keys = {
        "price": lambda i: i["price"],
        "price_per_carat": lambda i: i["price"] / certificate(i)["carats"],
        "size": lambda i: certificate(i)["carats"],
        "discount": lambda i: i["discount"],
    }[order_type]
    values = [keys(item) for item in items]

    assert values == sorted(values)
