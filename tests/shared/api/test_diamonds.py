"""Diamond search filters, sorting, pagination, look-up and availability refresh."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from shared import pricing

SEARCH = "/api/v2/diamonds"


def search(client, headers, **params) -> dict:
    response = client.get(SEARCH, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(client, headers, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = dict(params, limit=100)
        if cursor:
            query["cursor"] = cursor
        page = search(client, headers, **query)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def db_ids(runtime, where: str, params=()) -> set[int]:
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            f"select id from diamonds where status = 'active' and {where}", params
        ).fetchall()
    return {row[0] for row in rows}


def test_search_defaults_to_available(client, stocked, read_headers):
    items = all_pages(client, read_headers)
    assert {item["availability"] for item in items} == {"available"}
    assert {item["id"] for item in items} == db_ids(stocked, "availability = 'available'")


@pytest.mark.parametrize(
    ("params", "where", "values"),
    [
        ({"shape": "ROUND"}, "shape = 'ROUND'", ()),
        ({"shape": "round,oval"}, "shape in ('ROUND', 'OVAL')", ()),
        ({"color": ["D", "E"]}, "color in ('D', 'E')", ()),
        ({"clarity": "VS1"}, "clarity = 'VS1'", ()),
        ({"cut": "EXCELLENT"}, "cut = 'EXCELLENT'", ()),
        ({"polish": "EXCELLENT"}, "polish = 'EXCELLENT'", ()),
        ({"symmetry": "VERY GOOD"}, "symmetry = 'VERY GOOD'", ()),
        ({"fluorescence": "NONE"}, "fluorescence = 'NONE'", ()),
        ({"lab": "GIA"}, "certificate_lab = 'GIA'", ()),
        ({"lab_grown": "false"}, "not lab_grown", ()),
        ({"lab_grown": "true"}, "lab_grown", ()),
        ({"carat_min": "1.0", "carat_max": "1.5"}, "carats between 1.0 and 1.5", ()),
        ({"price_min_cents": 200000, "price_max_cents": 500000},
         "priced_price_cents between 200000 and 500000", ()),
        ({"price_per_carat_min_cents": 300000},
         "priced_price_per_carat_cents >= 300000", ()),
        ({"price_per_carat_min_cents": 300000, "price_per_carat_max_cents": 500000},
         "priced_price_per_carat_cents between 300000 and 500000", ()),
        ({"depth_percent_min": 60, "depth_percent_max": 62},
         "depth_percent between 60 and 62", ()),
        ({"table_percent_min": 55, "table_percent_max": 58},
         "table_percent between 55 and 58", ()),
        ({"ratio_min": "1.3"}, "length_width_ratio >= 1.3", ()),
        ({"has_image": "true"}, "image_url is not null", ()),
        ({"has_image": "false"}, "image_url is null", ()),
        ({"has_video": "true"}, "(video_url is not null or v360_url is not null)", ()),
        ({"availability": ["on_hold", "sold"]}, "availability in ('on_hold', 'sold')", ()),
    ],
)
def test_search_filter_matches_database(client, stocked, read_headers, params, where, values):
    if "availability" not in params:
        where += " and availability = 'available'"
    expected = db_ids(stocked, where, values)
    items = all_pages(client, read_headers, **params)
    assert {item["id"] for item in items} == expected


def test_search_filters_are_not_all_empty(stocked):
    # Guards the table above: each filter must select something in the catalogue.
    assert db_ids(stocked, "lab_grown")
    assert db_ids(stocked, "not lab_grown")
    assert db_ids(stocked, "image_url is null")
    assert db_ids(stocked, "priced_price_per_carat_cents between 300000 and 500000")


def test_lab_grown_maybe_is_422(client, read_headers):
    response = client.get(SEARCH, params={"lab_grown": "maybe"}, headers=read_headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "lab_grown"


@pytest.mark.parametrize(
    "params",
    [
        {"carat_min": 2, "carat_max": 1},
        {"price_min_cents": 10, "price_max_cents": 5},
        {"sort": "colour"},
        {"availability": "gone"},
        {"limit": 101},
        {"page": 101},
        {"cursor": "not-a-cursor"},
        {"carat_min": "NaN"},
    ],
)
def test_search_invalid_parameters_are_422(client, read_headers, params):
    response = client.get(SEARCH, params=params, headers=read_headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("sort", ["price", "-price", "carats", "-carats", "created",
                                  "-created", "price_per_carat", "-price_per_carat"])
def test_cursor_pages_are_sorted_and_complete(client, stocked, read_headers, sort):
    items = all_pages(client, read_headers, sort=sort, shape="ROUND")
    field = {"price": "price_cents", "carats": "carats", "created": None,
             "price_per_carat": "price_per_carat_cents"}[sort.lstrip("-")]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == db_ids(stocked, "shape = 'ROUND' and availability = 'available'")
    if field is not None:
        keys = [(Decimal(str(item[field])), item["id"]) for item in items]
        assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_cursor_of_other_sort_is_422(client, stocked, read_headers):
    page = search(client, read_headers, sort="price", limit=5)
    response = client.get(
        SEARCH, params={"sort": "carats", "cursor": page["next_cursor"]},
        headers=read_headers,
    )
    assert response.status_code == 422


def encoded_cursor(fields: list) -> str:
    text = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "fields",
    [
        ["price", "1", True],
        [["price"], "1", 1],
        ["price", 1, 1],
        ["price", "1", 1.5],
        {"sort": "price", "value": "1", "id": 1},
        ["price", "1"],
    ],
    ids=["bool id", "list sort", "number value", "float id", "object", "two fields"],
)
def test_cursor_with_wrong_field_types_is_422(client, read_headers, fields):
    response = client.get(
        SEARCH, params={"cursor": encoded_cursor(fields)}, headers=read_headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("value", ["abc", "", "NaN", "-sNaN", "Infinity"])
def test_cursor_with_invalid_carats_is_422(client, read_headers, value):
    response = client.get(
        SEARCH, params={"sort": "carats", "cursor": encoded_cursor(["carats", value, 1])},
        headers=read_headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_page_and_limit_with_total(client, stocked, read_headers):
    first = search(client, read_headers, page=1, limit=10, include_total="true")
    second = search(client, read_headers, page=2, limit=10)
    assert first["total"] == len(db_ids(stocked, "availability = 'available'"))
    assert second["total"] is None
    assert len(first["items"]) == 10
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


def test_page_matches_cursor_order(client, stocked, read_headers):
    by_page = search(client, read_headers, page=2, limit=7)["items"]
    first = search(client, read_headers, limit=7)
    by_cursor = search(client, read_headers, limit=7, cursor=first["next_cursor"])["items"]
    assert [i["id"] for i in by_page] == [i["id"] for i in by_cursor]


def test_search_response_is_snake_case_with_cents(client, stocked, read_headers):
    item = search(client, read_headers, limit=1)["items"][0]
    assert isinstance(item["price_cents"], int)
    assert set(item["certificate"]) == {"lab", "number", "pdf_url"}


def test_price_per_carat_is_retail(client, stocked, read_headers):
    items = all_pages(client, read_headers)
    assert items
    for item in items:
        carats = Decimal(str(item["carats"]))
        expected = pricing.price_per_carat_cents(item["price_cents"], carats)
        assert item["price_per_carat_cents"] == expected, item["id"]
        assert isinstance(item["price_per_carat_cents"], int)
        assert item["feed_price_per_carat_cents"] < item["price_per_carat_cents"]


def test_price_per_carat_filter_uses_retail(client, stocked, read_headers):
    item = search(client, read_headers, limit=1)["items"][0]
    retail = item["price_per_carat_cents"]
    feed = item["feed_price_per_carat_cents"]

    at_retail = all_pages(client, read_headers, price_per_carat_min_cents=retail,
                          price_per_carat_max_cents=retail)
    at_feed = all_pages(client, read_headers, price_per_carat_min_cents=feed,
                        price_per_carat_max_cents=feed)

    assert item["id"] in {found["id"] for found in at_retail}
    assert item["id"] not in {found["id"] for found in at_feed}


def test_price_per_carat_follows_rule_change(client, stocked, read_headers,
                                             admin_headers):
    rule = {"priority": 10, "shapes": ["ROUND"], "markup_ratio": "2.0000",
            "rating": 8}
    response = client.post("/api/v2/pricing-rules", json=rule, headers=admin_headers)
    assert response.status_code == 201

    items = all_pages(client, read_headers, shape="ROUND", sort="-price_per_carat")
    assert items
    for item in items:
        carats = Decimal(str(item["carats"]))
        assert item["price_cents"] == item["feed_price_cents"] * 2
        expected = pricing.price_per_carat_cents(item["price_cents"], carats)
        assert item["price_per_carat_cents"] == expected, item["id"]
    keys = [(item["price_per_carat_cents"], item["id"]) for item in items]
    assert keys == sorted(keys, reverse=True)


def test_get_diamond(client, stocked, read_headers):
    response = client.get(f"{SEARCH}/1", headers=read_headers)
    assert response.status_code == 200
    assert response.json()["id"] == 1


def test_get_missing_diamond_is_404(client, stocked, read_headers):
    response = client.get(f"{SEARCH}/999999", headers=read_headers)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "diamond 999999 not found"}
    }


def test_availability_refresh_reads_supplier(client, stocked, simulator, trade_headers):
    with stocked.pool.connection() as conn:
        stone_id = conn.execute(
            "select supplier_stone_id from diamonds where availability = 'available'"
            " order by id limit 1"
        ).fetchone()[0]
        diamond_id = conn.execute(
            "select id from diamonds where supplier_stone_id = %s", (stone_id,)
        ).fetchone()[0]
    hold = simulator.catalogue.create_hold(stone_id)
    response = client.post(f"{SEARCH}/{diamond_id}/availability", headers=trade_headers)
    assert response.status_code == 200
    assert response.json()["availability"] == "on_hold"
    assert response.json()["hold_id"] == hold["id"]


def test_availability_refresh_missing_is_404(client, stocked, trade_headers):
    response = client.post(f"{SEARCH}/999999/availability", headers=trade_headers)
    assert response.status_code == 404


def test_unknown_route_uses_envelope(client):
    response = client.get("/api/v2/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_uses_envelope(client):
    response = client.put(SEARCH)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_openapi_declares_security_schemes(client):
    document = client.get("/api/v2/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    assert schemes["HmacSignature"]["name"] == "X-Signature"
    assert document["paths"]["/api/v2/diamonds"]["get"]["security"]
