"""Pricing rules against a real PostgreSQL: matching, rounding, changes, previews."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from pydantic import ValidationError

from shared import pricing
from shared.pricing import PricingRuleError, PricingRuleInput

DEFAULT_RULE_ID = 1


@pytest.fixture
def conn(clean_db):
    with psycopg.connect(clean_db) as connection:
        yield connection


def insert_stone(conn, stone_id: str, *, carats="1.000", price_cents=100_000,
                 shape="ROUND", lab_grown=False, feed="nivoda") -> None:
    feed_per_carat = pricing.price_per_carat_cents(price_cents, Decimal(carats))
    conn.execute(
        "insert into diamonds (feed, supplier_stone_id, offer_id, shape, carats,"
        " lab_grown, feed_price_cents, feed_price_per_carat_cents,"
        " priced_price_cents, markup_ratio, availability, raw_availability,"
        " certificate_number)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, 0, 1, 'available', 'AVAILABLE',"
        " %s)",
        (feed, stone_id, f"offer-{stone_id}", shape, Decimal(carats), lab_grown,
         price_cents, feed_per_carat, f"cert-{stone_id}"),
    )


def stone(conn, stone_id: str) -> dict:
    row = conn.execute(
        "select priced_price_cents, pricing_rule_id, rating, markup_ratio,"
        " priced_price_per_carat_cents, feed_price_per_carat_cents"
        " from diamonds where supplier_stone_id = %s",
        (stone_id,),
    ).fetchone()
    return {"price": row[0], "rule_id": row[1], "rating": row[2], "markup": row[3],
            "per_carat": row[4], "feed_per_carat": row[5]}


def rule(**fields) -> PricingRuleInput:
    values = {"priority": 10, "markup_ratio": Decimal("1.5"), "rating": 7}
    values.update(fields)
    return PricingRuleInput(**values)


# Rounding


@pytest.mark.parametrize(
    ("feed_price_cents", "markup", "expected"),
    [
        (100_010, "1.15", 115_012),  # binary floats give 115,011
        (1, "0.5", 1),  # 0.5 rounds up
        (3, "0.5", 2),  # 1.5 rounds up
        (5, "0.1", 1),  # 0.5 rounds up
        (1_000, "1.2345", 1_235),  # 1234.5 rounds up
        (1_000, "1.2344", 1_234),
        (999_999_999, "1.0001", 1_000_099_999),  # 1000099998.9999 rounds up
    ],
)
def test_price_cents_rounds_half_up(feed_price_cents, markup, expected):
    assert pricing.price_cents(feed_price_cents, Decimal(markup)) == expected


def test_reprice_rounds_like_price_cents(conn):
    for index, price in enumerate((100_010, 1, 3, 5, 1_001)):
        insert_stone(conn, f"s{index}", price_cents=price)
    pricing.reprice(conn)
    for index, price in enumerate((100_010, 1, 3, 5, 1_001)):
        expected = pricing.price_cents(price, Decimal("1.15"))
        assert stone(conn, f"s{index}")["price"] == expected


@pytest.mark.parametrize(
    ("price_cents", "carats", "expected"),
    [
        (145_130, "1.030", 140_903),  # 140,902.91
        (1, "2.000", 1),  # 0.5 rounds up
        (3, "2.000", 2),  # 1.5 rounds up, not to even
        (1_001, "2.000", 501),  # 500.5 rounds up
        (1, "0.003", 333),  # 333.33
        (5, "0.003", 1_667),  # 1,666.67
        (2**63 - 1, "2.000", 2**62),  # 4,611,686,018,427,387,903.5 rounds up
        (2**63 - 1, "0.001", (2**63 - 1) * 1000),  # beyond bigint
        # 90,000,000,900,999.499999995, where PostgreSQL's price / carats
        # returns 90,000,000,900,999.5000.
        (9_000_000_000_099_949_099, "99999.999", 90_000_000_900_999),
    ],
)
def test_price_per_carat_cents_rounds_half_up(price_cents, carats, expected):
    assert pricing.price_per_carat_cents(price_cents, Decimal(carats)) == expected


def test_retail_price_per_carat_column_rounds_half_up(conn):
    cases = [(145_130, "1.030"), (1, "2.000"), (3, "2.000"), (1, "0.003"),
             (5, "0.003"), (2**63 - 1, "2.000"), (2**63 - 1, "0.001"),
             (9_000_000_000_099_949_099, "99999.999")]
    for index, (price, carats) in enumerate(cases):
        insert_stone(conn, f"s{index}", carats=carats)
        conn.execute("update diamonds set priced_price_cents = %s"
                     " where supplier_stone_id = %s", (price, f"s{index}"))
    for index, (price, carats) in enumerate(cases):
        expected = pricing.price_per_carat_cents(price, Decimal(carats))
        assert stone(conn, f"s{index}")["per_carat"] == expected, (price, carats)


def test_retail_price_per_carat_of_zero_carats(conn):
    # Stones stored before mapping rejected carats below 0.0005 may have 0.
    insert_stone(conn, "s1", carats="0.001")
    conn.execute("update diamonds set carats = 0")
    pricing.reprice(conn)
    assert stone(conn, "s1")["price"] == 115_000
    assert stone(conn, "s1")["per_carat"] == 115_000_000


# Validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"carat_min": Decimal("2"), "carat_max": Decimal("1")},
         "carat_min 2 is above carat_max 1"),
        ({"feed_price_min_cents": 500, "feed_price_max_cents": 100},
         "feed_price_min_cents 500 is above feed_price_max_cents 100"),
        ({"markup_ratio": Decimal("0")}, "greater than 0"),
        ({"markup_ratio": Decimal("-1.2")}, "greater than 0"),
        ({"rating": 0}, "greater than or equal to 1"),
        ({"rating": 11}, "less than or equal to 10"),
        ({"shapes": ["ROUND", "BLOB"]}, "shape 'BLOB' is not a known shape"),
        ({"feed": "Nivoda!"}, "should match pattern"),
        ({"carat_min": Decimal("0.0001")}, "decimal places"),
        ({"colour": "D"}, "Extra inputs are not permitted"),
        ({"rating": True}, "Input should be a valid integer"),
        ({"priority": True}, "Input should be a valid integer"),
        ({"feed_price_min_cents": False}, "Input should be a valid integer"),
    ],
)
def test_rule_input_rejects_invalid_fields(fields, message):
    with pytest.raises(ValidationError) as caught:
        rule(**fields)
    assert message in str(caught.value)


def test_rule_input_normalises_shapes():
    assert rule(shapes=[" round ", "Oval", "ROUND"]).shapes == ["ROUND", "OVAL"]
    assert rule(shapes=["cushion  modified"]).shapes == ["CUSHION MODIFIED"]
    assert rule(shapes=[]).shapes is None


def test_rule_input_accepts_equal_bounds():
    accepted = rule(carat_min=Decimal("1"), carat_max=Decimal("1"),
                    feed_price_min_cents=5, feed_price_max_cents=5)
    assert accepted.carat_min == accepted.carat_max


# Matching


MATCH_CASES = [
    # (rule fields, stone fields, matches)
    ({"carat_min": Decimal("1.000"), "carat_max": Decimal("2.000")},
     {"carats": "0.999"}, False),
    ({"carat_min": Decimal("1.000"), "carat_max": Decimal("2.000")},
     {"carats": "1.000"}, True),
    ({"carat_min": Decimal("1.000"), "carat_max": Decimal("2.000")},
     {"carats": "2.000"}, True),
    ({"carat_min": Decimal("1.000"), "carat_max": Decimal("2.000")},
     {"carats": "2.001"}, False),
    ({"carat_min": Decimal("1.5")}, {"carats": "9.000"}, True),
    ({"carat_max": Decimal("1.5")}, {"carats": "0.010"}, True),
    ({"feed_price_min_cents": 1_000, "feed_price_max_cents": 2_000},
     {"price_cents": 999}, False),
    ({"feed_price_min_cents": 1_000, "feed_price_max_cents": 2_000},
     {"price_cents": 1_000}, True),
    ({"feed_price_min_cents": 1_000, "feed_price_max_cents": 2_000},
     {"price_cents": 2_000}, True),
    ({"feed_price_min_cents": 1_000, "feed_price_max_cents": 2_000},
     {"price_cents": 2_001}, False),
    ({"shapes": ["OVAL", "PEAR"]}, {"shape": "PEAR"}, True),
    ({"shapes": ["OVAL", "PEAR"]}, {"shape": "ROUND"}, False),
    ({"lab_grown": True}, {"lab_grown": True}, True),
    ({"lab_grown": True}, {"lab_grown": False}, False),
    ({"lab_grown": False}, {"lab_grown": False}, True),
    ({"feed": "nivoda"}, {"feed": "nivoda"}, True),
    ({"feed": "nivoda"}, {"feed": "other"}, False),
    ({"active": False}, {}, False),
]


@pytest.mark.parametrize(("rule_fields", "stone_fields", "matches"), MATCH_CASES)
def test_rule_matching_table(conn, rule_fields, stone_fields, matches):
    created, _ = pricing.create_rule(conn, rule(**rule_fields))
    insert_stone(conn, "s1", **stone_fields)
    pricing.reprice(conn)
    expected = created["id"] if matches else DEFAULT_RULE_ID
    assert stone(conn, "s1")["rule_id"] == expected


def test_priority_tie_broken_by_lower_id(conn):
    first, _ = pricing.create_rule(conn, rule(priority=5, markup_ratio=Decimal("2")))
    pricing.create_rule(conn, rule(priority=5, markup_ratio=Decimal("3")))
    insert_stone(conn, "s1", price_cents=1_000)
    pricing.reprice(conn)
    assert stone(conn, "s1")["rule_id"] == first["id"]
    assert stone(conn, "s1")["price"] == 2_000


def test_lower_priority_number_wins(conn):
    pricing.create_rule(conn, rule(priority=50, markup_ratio=Decimal("2")))
    preferred, _ = pricing.create_rule(conn, rule(priority=20,
                                                  markup_ratio=Decimal("3")))
    insert_stone(conn, "s1", price_cents=1_000)
    pricing.reprice(conn)
    assert stone(conn, "s1")["rule_id"] == preferred["id"]


def test_default_rule_prices_unmatched_stones(conn):
    pricing.create_rule(conn, rule(shapes=["OVAL"]))
    insert_stone(conn, "s1", shape="ROUND", price_cents=100_010)
    pricing.reprice(conn)
    priced = stone(conn, "s1")
    assert priced["rule_id"] == DEFAULT_RULE_ID
    assert priced["price"] == 115_012
    assert priced["rating"] == 5
    assert priced["markup"] == Decimal("1.15")


# Re-pricing after each kind of change


def test_create_rule_reprices_matching_stones(conn):
    insert_stone(conn, "round", shape="ROUND", price_cents=1_000)
    insert_stone(conn, "oval", shape="OVAL", price_cents=1_000)
    pricing.reprice(conn)
    created, result = pricing.create_rule(conn, rule(shapes=["OVAL"]))
    assert result.changed == 1
    assert stone(conn, "oval")["price"] == 1_500
    assert stone(conn, "oval")["rule_id"] == created["id"]
    assert stone(conn, "round")["price"] == 1_150


def test_reprice_updates_retail_price_per_carat(conn):
    insert_stone(conn, "s1", carats="1.030", price_cents=126_200)
    pricing.reprice(conn)
    assert stone(conn, "s1")["price"] == 145_130
    assert stone(conn, "s1")["per_carat"] == 140_903  # 145,130 / 1.03
    assert stone(conn, "s1")["feed_per_carat"] == 122_524  # 126,200 / 1.03

    created, _ = pricing.create_rule(conn, rule(markup_ratio=Decimal("2")))
    assert stone(conn, "s1")["price"] == 252_400
    assert stone(conn, "s1")["per_carat"] == 245_049  # 245,048.54
    pricing.update_rule(conn, created["id"], rule(markup_ratio=Decimal("1.0001")))
    assert stone(conn, "s1")["price"] == 126_213  # 126,212.62
    assert stone(conn, "s1")["per_carat"] == 122_537  # 122,536.89
    pricing.deactivate_rule(conn, created["id"])
    assert stone(conn, "s1")["per_carat"] == 140_903
    assert stone(conn, "s1")["feed_per_carat"] == 122_524


def test_reprice_keeps_retail_price_per_carat_exact(conn):
    seed_inventory(conn)
    pricing.create_rule(conn, rule(shapes=["OVAL"], markup_ratio=Decimal("1.3333")))
    rows = conn.execute(
        "select priced_price_cents, carats, priced_price_per_carat_cents"
        " from diamonds"
    ).fetchall()
    assert len(rows) == 30
    for price, carats, per_carat in rows:
        assert per_carat == pricing.price_per_carat_cents(price, carats)


def test_update_rule_reprices_stones(conn):
    insert_stone(conn, "s1", price_cents=1_000)
    created, _ = pricing.create_rule(conn, rule())
    updated, result = pricing.update_rule(
        conn, created["id"], rule(markup_ratio=Decimal("2.0001"), rating=9)
    )
    assert result.changed == 1
    assert updated["markup_ratio"] == Decimal("2.0001")
    assert stone(conn, "s1")["price"] == 2_000
    assert stone(conn, "s1")["rating"] == 9


def test_rating_only_update_changes_no_price(conn):
    insert_stone(conn, "s1", price_cents=1_000)
    created, _ = pricing.create_rule(conn, rule())
    _, result = pricing.update_rule(conn, created["id"], rule(rating=2))
    assert result.changed == 0
    assert stone(conn, "s1")["rating"] == 2


def test_deactivate_rule_falls_back_to_next_rule(conn):
    insert_stone(conn, "s1", price_cents=1_000)
    created, _ = pricing.create_rule(conn, rule())
    deactivated, result = pricing.deactivate_rule(conn, created["id"])
    assert deactivated["active"] is False
    assert result.changed == 1
    assert stone(conn, "s1")["rule_id"] == DEFAULT_RULE_ID
    assert stone(conn, "s1")["price"] == 1_150


def test_repeated_reprice_changes_nothing(conn):
    insert_stone(conn, "s1")
    pricing.reprice(conn)
    assert pricing.reprice(conn).changed == 0


def test_change_is_rolled_back_with_callers_transaction(conn):
    insert_stone(conn, "s1", price_cents=1_000)
    pricing.reprice(conn)
    conn.commit()
    conn.execute("select 1")  # the caller's transaction is open
    pricing.create_rule(conn, rule())
    conn.rollback()
    assert stone(conn, "s1")["price"] == 1_150
    assert len(pricing.list_rules(conn)) == 1


# The catch-all rule


def test_deactivating_last_catch_all_is_rejected(conn):
    with pytest.raises(PricingRuleError, match="last active rule that matches every"):
        pricing.deactivate_rule(conn, DEFAULT_RULE_ID)
    assert pricing.get_rule(conn, DEFAULT_RULE_ID)["active"] is True


def test_narrowing_last_catch_all_is_rejected(conn):
    with pytest.raises(PricingRuleError, match="deactivating or narrowing"):
        pricing.update_rule(conn, DEFAULT_RULE_ID, rule(priority=1000,
                                                        lab_grown=True))
    assert pricing.get_rule(conn, DEFAULT_RULE_ID)["lab_grown"] is None


def test_catch_all_can_change_markup(conn):
    updated, _ = pricing.update_rule(
        conn, DEFAULT_RULE_ID, rule(priority=1000, markup_ratio=Decimal("1.2"))
    )
    assert updated["markup_ratio"] == Decimal("1.2")


def test_catch_all_can_go_when_another_exists(conn):
    pricing.create_rule(conn, rule(priority=2000))
    deactivated, _ = pricing.deactivate_rule(conn, DEFAULT_RULE_ID)
    assert deactivated["active"] is False


@pytest.mark.parametrize("change", ["update", "deactivate"])
def test_missing_rule_is_not_found(conn, change):
    with pytest.raises(PricingRuleError, match="pricing rule 999 not found"):
        if change == "update":
            pricing.update_rule(conn, 999, rule())
        else:
            pricing.deactivate_rule(conn, 999)


def test_get_rule_returns_none_when_missing(conn):
    assert pricing.get_rule(conn, 999) is None


def test_list_rules_orders_by_priority_then_id(conn):
    pricing.create_rule(conn, rule(priority=2000))
    pricing.create_rule(conn, rule(priority=1))
    priorities = [item["priority"] for item in pricing.list_rules(conn)]
    assert priorities == [1, 1000, 2000]


# Previews


def seed_inventory(conn) -> None:
    shapes = ("ROUND", "OVAL", "PEAR")
    for index in range(30):
        insert_stone(conn, f"s{index}", shape=shapes[index % 3],
                     carats=f"{0.5 + index / 10:.3f}",
                     price_cents=1_001 + 37 * index, lab_grown=index % 2 == 0)
    pricing.reprice(conn)


def total_price(conn) -> int:
    return conn.execute("select sum(priced_price_cents) from diamonds").fetchone()[0]


@pytest.mark.parametrize(
    "fields",
    [
        {"shapes": ["OVAL"], "markup_ratio": Decimal("1.3333")},
        {"carat_min": Decimal("1.0"), "carat_max": Decimal("2.0"),
         "lab_grown": True, "markup_ratio": Decimal("0.9")},
        {"priority": 2000, "markup_ratio": Decimal("5")},  # shadowed by the default
    ],
)
def test_preview_matches_create(conn, fields):
    seed_inventory(conn)
    before = total_price(conn)
    preview = pricing.preview_rule(conn, rule(**fields))
    assert total_price(conn) == before
    assert len(pricing.list_rules(conn)) == 1

    _, result = pricing.create_rule(conn, rule(**fields))
    assert preview["changed"] == result.changed
    assert preview["total_change_cents"] == total_price(conn) - before


def test_preview_matches_update(conn):
    seed_inventory(conn)
    created, _ = pricing.create_rule(conn, rule(shapes=["PEAR"]))
    before = total_price(conn)
    change = rule(shapes=["PEAR", "ROUND"], markup_ratio=Decimal("1.75"))
    preview = pricing.preview_rule(conn, change, created["id"])
    assert pricing.get_rule(conn, created["id"])["shapes"] == ["PEAR"]

    _, result = pricing.update_rule(conn, created["id"], change)
    assert preview["changed"] == result.changed
    assert preview["total_change_cents"] == total_price(conn) - before


def test_preview_counts_matched_and_priced_stones(conn):
    seed_inventory(conn)
    pricing.create_rule(conn, rule(priority=1, shapes=["OVAL"], lab_grown=True))
    preview = pricing.preview_rule(conn, rule(priority=5, shapes=["OVAL"]))
    assert preview["matched"] == 10
    assert preview["priced_by_rule"] == 5
    assert preview["changed"] == 5
    assert preview["average_change_cents"] == round(
        preview["total_change_cents"] / preview["changed"]
    )


def test_preview_rejects_narrowing_last_catch_all(conn):
    with pytest.raises(PricingRuleError, match="last active rule"):
        pricing.preview_rule(conn, rule(priority=1000, active=False),
                             DEFAULT_RULE_ID)
