"""map_offer: Nivoda search items to `diamonds` rows."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from shared.mapping import (
    DIAMOND_RECORD_COLUMNS,
    KNOWN_SHAPES,
    DiamondRecord,
    MappingError,
    map_offer,
)
from shared.nivoda.models import Offer
from simulator.catalogue import Catalogue

PAYLOAD: dict[str, Any] = {
    "id": "DIAMOND/0f8fad5b-d9cb-469f-a165-70867728950e",
    "price": 100010,
    "discount": -12.5,
    "markup_price": 100010,
    "diamond_price": 100010,
    "createdAt": "2025-05-11T09:00:00Z",
    "updatedAt": "2025-06-09T12:47:34.250Z",
    "diamond": {
        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "availability": "AVAILABLE",
        "HoldId": None,
        "image": "https://media.example.test/images/1.jpg",
        "video": "https://media.example.test/videos/1.mp4",
        "supplier_video_link": None,
        "supplierStockId": "SUP1-00000001",
        "NivodaStockId": "NV000000001",
        "eyeClean": True,
        "brown": "NONE",
        "green": None,
        "milky": "NONE",
        "mine_of_origin": "Botswana",
        "v360": {"url": "https://media.example.test/v360/1/index.html"},
        "delivery_time": {"min_business_days": 3, "max_business_days": 6},
        "supplier": {
            "id": "6f1c2d9e-8a4b-4c1e-9f3a-1b2c3d4e5f60",
            "name": "Antwerp Rough Co",
            "legal_name": "Antwerp Rough Co BV",
        },
        "certificate": {
            "id": "1e2da7a0-11fc-5b41-aa17-8370ee4878e5",
            "lab": "gia",
            "certNumber": "2200044320",
            "pdfUrl": "https://media.example.test/certificates/gia/2200044320.pdf",
            "shape": "round",
            "carats": 0.3,
            "color": "e",
            "clarity": "vs1",
            "cut": "EX",
            "polish": "Very Good",
            "symmetry": "vg",
            "floInt": "Very_Strong",
            "floCol": "blue",
            "length": 4.31,
            "width": 4.28,
            "depth": 2.65,
            "depthPercentage": 61.7,
            "table": 57,
            "crownAngle": 34.5,
            "crownHeight": 15.0,
            "pavAngle": 40.8,
            "pavDepth": 43.1,
            "girdle": "MEDIUM",
            "culetSize": "NONE",
            "labgrown": False,
            "treated": False,
            "f_color": None,
            "f_intensity": None,
            "f_overtone": None,
        },
    },
}


def payload_with(path: str, value: Any) -> dict[str, Any]:
    """Return a copy of PAYLOAD with the dotted `path` set (or removed)."""
    payload = copy.deepcopy(PAYLOAD)
    *parents, leaf = path.split(".")
    target = payload
    for name in parents:
        target = target[name]
    if value is REMOVE:
        del target[leaf]
    else:
        target[leaf] = value
    return payload


REMOVE = object()


def diamonds_table_columns(database_url: str) -> list[str]:
    """Return the columns of `diamonds` after every migration, in table order."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = current_schema() and table_name = 'diamonds'"
            " order by ordinal_position"
        ).fetchall()
    return [row[0] for row in rows]


# The whole record


def test_record_columns_exist_in_diamonds_table(database_url):
    columns = diamonds_table_columns(database_url)

    missing = [name for name in DIAMOND_RECORD_COLUMNS if name not in columns]

    assert missing == []


def test_record_columns_follow_table_order(database_url):
    columns = diamonds_table_columns(database_url)
    positions = [columns.index(name) for name in DIAMOND_RECORD_COLUMNS]

    assert positions == sorted(positions)


def test_record_columns_are_the_fields():
    assert DIAMOND_RECORD_COLUMNS == DiamondRecord._fields
    assert len(DIAMOND_RECORD_COLUMNS) == 34


def test_maps_every_field():
    record = map_offer(PAYLOAD, "nivoda")

    expected = {
        "feed": "nivoda",
        "supplier_stone_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "offer_id": "DIAMOND/0f8fad5b-d9cb-469f-a165-70867728950e",
        "shape": "ROUND",
        "carats": Decimal("0.3"),
        "color": "E",
        "clarity": "VS1",
        "cut": "EXCELLENT",
        "polish": "VERY GOOD",
        "symmetry": "VERY GOOD",
        "fluorescence": "VERY STRONG",
        "fluorescence_color": "BLUE",
        "lab_grown": False,
        "treated": False,
        "feed_price_cents": 100010,
        "feed_price_per_carat_cents": 333367,
        "availability": "available",
        "raw_availability": "AVAILABLE",
        "hold_id": None,
        "image_url": "https://media.example.test/images/1.jpg",
        "video_url": "https://media.example.test/videos/1.mp4",
        "v360_url": "https://media.example.test/v360/1/index.html",
        "certificate_lab": "GIA",
        "certificate_number": "2200044320",
        "certificate_pdf_url": (
            "https://media.example.test/certificates/gia/2200044320.pdf"
        ),
        "depth_percent": Decimal("61.7"),
        "table_percent": Decimal(57),
        "length_width_ratio": Decimal("1.007"),
        "measurements": {
            "length": "4.31",
            "width": "4.28",
            "depth": "2.65",
            "crown_angle": "34.5",
            "crown_height": "15.0",
            "pavilion_angle": "40.8",
            "pavilion_depth": "43.1",
            "girdle": "MEDIUM",
            "culet_size": "NONE",
        },
        "attributes": {
            "eye_clean": True,
            "brown": "NONE",
            "green": None,
            "milky": "NONE",
            "mine_of_origin": "Botswana",
            "supplier_stock_id": "SUP1-00000001",
            "nivoda_stock_id": "NV000000001",
            "f_color": None,
            "f_intensity": None,
            "f_overtone": None,
            "delivery_time": {"min_business_days": 3, "max_business_days": 6},
            "supplier_id": "6f1c2d9e-8a4b-4c1e-9f3a-1b2c3d4e5f60",
            "discount": -12.5,
        },
        "supplier_name": "Antwerp Rough Co",
        "delivery_days_min": 3,
        "delivery_days_max": 6,
        "source_updated_at": datetime(2025, 6, 9, 12, 47, 34, 250000, tzinfo=UTC),
    }
    for name, value in expected.items():
        assert getattr(record, name) == value, name
    assert set(expected) == set(DIAMOND_RECORD_COLUMNS)


def test_record_is_immutable():
    record = map_offer(PAYLOAD, "nivoda")

    with pytest.raises(AttributeError):
        record.shape = "OVAL"


def test_jsonb_fields_serialise():
    record = map_offer(PAYLOAD, "nivoda")

    assert json.loads(json.dumps(record.measurements)) == record.measurements
    assert json.loads(json.dumps(record.attributes)) == record.attributes


def test_mapping_leaves_payload_unchanged():
    payload = copy.deepcopy(PAYLOAD)

    map_offer(payload, "nivoda")

    assert payload == PAYLOAD


# Exact numbers


@pytest.mark.parametrize(
    ("price", "carats", "expected"),
    [
        (100010, 0.3, 333367),  # 333,366.67 rounds up
        (150, 0.3, 500),  # exact, where 150 / 0.3 in floats is 499.99...
        (1001, 2, 501),  # 500.5: half rounds up
        (1003, 2, 502),  # 501.5: half rounds up, not to even
        (99999, 3, 33333),
        (1, 0.001, 1000),
        (123456789, 1.01, 122234445),
    ],
)
def test_price_per_carat_rounds_half_up(price, carats, expected):
    payload = payload_with("price", price)
    payload["diamond"]["certificate"]["carats"] = carats

    record = map_offer(payload, "nivoda")

    assert record.feed_price_per_carat_cents == expected
    assert record.feed_price_cents == price


def test_carats_keep_json_text():
    record = map_offer(payload_with("diamond.certificate.carats", 1.1), "nivoda")

    assert record.carats == Decimal("1.1")
    assert str(record.carats) == "1.1"


def test_carats_from_json_text():
    payload = json.loads(json.dumps(PAYLOAD).replace('"carats": 0.3', '"carats": 0.30'))

    record = map_offer(payload, "nivoda")

    assert record.carats == Decimal("0.3")


@pytest.mark.parametrize(
    ("length", "width", "expected"),
    [
        (4.31, 4.28, Decimal("1.007")),
        (2.001, 2, Decimal("1.001")),  # 1.0005: half rounds up
        (6.5, 4.33, Decimal("1.501")),
        (4, 4, Decimal("1.000")),
        (4.31, 0, None),
        (4.31, None, None),
        (None, 4.28, None),
        (0, 4.28, None),
    ],
)
def test_length_width_ratio(length, width, expected):
    payload = payload_with("diamond.certificate.length", length)
    payload["diamond"]["certificate"]["width"] = width

    assert map_offer(payload, "nivoda").length_width_ratio == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("depthPercentage", 62.35, Decimal("62.35")),
        ("depthPercentage", 0, None),
        ("depthPercentage", None, None),
        ("table", 100, Decimal(100)),
    ],
)
def test_percentages(field, value, expected):
    record = map_offer(payload_with(f"diamond.certificate.{field}", value), "nivoda")

    column = "depth_percent" if field == "depthPercentage" else "table_percent"
    assert getattr(record, column) == expected


# Normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AVAILABLE", "available"),
        ("available", "available"),
        (" Available ", "available"),
        ("ON_HOLD", "on_hold"),
        ("on_hold", "on_hold"),
        ("HOLD", "on_hold"),
        ("SOLD", "sold"),
        ("sold", "sold"),
        ("MEMO", "unavailable"),
        ("UNAVAILABLE", "unavailable"),
        ("NOT_AVAILABLE", "unavailable"),
        ("AVAILABLE_SOON", "unavailable"),
        ("ON HOLD", "unavailable"),
        ("HOLD_EXPIRED", "unavailable"),
        ("", "unavailable"),
    ],
)
def test_availability_whole_values(raw, expected):
    record = map_offer(payload_with("diamond.availability", raw), "nivoda")

    assert record.availability == expected
    assert record.raw_availability == raw


def test_availability_missing_is_unavailable():
    record = map_offer(payload_with("diamond.availability", None), "nivoda")

    assert record.availability == "unavailable"
    assert record.raw_availability == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ROUND", "ROUND"),
        ("Round", "ROUND"),
        ("  oval ", "OVAL"),
        ("RD", "ROUND"),
        ("ps", "PEAR"),
        ("Cushion_Modified", "CUSHION MODIFIED"),
        ("old mine", "OLD MINER"),
        ("Old European", "EUROPEAN"),
        ("baguette", "BAGUETTE"),
        ("TRILLIANT", "TRILLIANT"),
    ],
)
def test_shape_normalised(raw, expected):
    record = map_offer(payload_with("diamond.certificate.shape", raw), "nivoda")

    assert record.shape == expected


def test_simulator_shapes_are_known():
    from simulator.generation import SHAPES

    assert set(SHAPES) <= KNOWN_SHAPES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("EX", "EXCELLENT"),
        ("ex", "EXCELLENT"),
        ("VG", "VERY GOOD"),
        ("very_good", "VERY GOOD"),
        ("GD", "GOOD"),
        ("G", "GOOD"),
        ("F", "FAIR"),
        ("P", "POOR"),
        ("ID", "IDEAL"),
        ("Ideal", "IDEAL"),
        ("", None),
        (None, None),
    ],
)
def test_cut_normalised(raw, expected):
    record = map_offer(payload_with("diamond.certificate.cut", raw), "nivoda")

    assert record.cut == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NONE", "NONE"),
        ("None", "NONE"),
        ("Faint", "FAINT"),
        ("SLIGHT", "FAINT"),
        ("medium", "MEDIUM"),
        ("STRONG", "STRONG"),
        ("VERY STRONG", "VERY STRONG"),
        ("very_strong", "VERY STRONG"),
        ("VST", "VERY STRONG"),
        (None, None),
    ],
)
def test_fluorescence_normalised(raw, expected):
    record = map_offer(payload_with("diamond.certificate.floInt", raw), "nivoda")

    assert record.fluorescence == expected
    assert "fluorescence_raw" not in record.attributes


def test_unknown_fluorescence_kept_in_attributes():
    payload = payload_with("diamond.certificate.floInt", "GLOWING")

    record = map_offer(payload, "nivoda")

    assert record.fluorescence is None
    assert record.attributes["fluorescence_raw"] == "GLOWING"


def test_color_and_clarity_upper_case():
    payload = payload_with("diamond.certificate.color", " fancy  yellow ")
    payload["diamond"]["certificate"]["clarity"] = "si2"

    record = map_offer(payload, "nivoda")

    assert record.color == "FANCY YELLOW"
    assert record.clarity == "SI2"


def test_video_falls_back_to_supplier_link():
    payload = payload_with("diamond.video", None)
    payload["diamond"]["supplier_video_link"] = "https://media.example.test/s.mp4"

    assert map_offer(payload, "nivoda").video_url == "https://media.example.test/s.mp4"


def test_empty_strings_are_missing():
    payload = payload_with("diamond.image", "")
    payload["diamond"]["HoldId"] = ""

    record = map_offer(payload, "nivoda")

    assert record.image_url is None
    assert record.hold_id is None


def test_optional_objects_may_be_null():
    payload = payload_with("diamond.v360", None)
    payload["diamond"]["supplier"] = None
    payload["diamond"]["delivery_time"] = None

    record = map_offer(payload, "nivoda")

    assert record.v360_url is None
    assert record.supplier_name is None
    assert record.delivery_days_min is None
    assert record.delivery_days_max is None
    assert record.attributes["supplier_id"] is None


def test_missing_optional_keys_are_null():
    payload = copy.deepcopy(PAYLOAD)
    for name in ("HoldId", "image", "video", "v360", "supplier", "delivery_time"):
        del payload["diamond"][name]
    for name in ("length", "width", "depthPercentage", "table", "treated"):
        del payload["diamond"]["certificate"][name]
    del payload["updatedAt"]

    record = map_offer(payload, "nivoda")

    assert record.image_url is None
    assert record.length_width_ratio is None
    assert record.treated is False
    assert record.source_updated_at is None
    assert record.measurements["length"] is None


def test_hold_id_and_treated():
    payload = payload_with("diamond.HoldId", "hold-9")
    payload["diamond"]["availability"] = "ON_HOLD"
    payload["diamond"]["certificate"]["treated"] = True
    payload["diamond"]["certificate"]["labgrown"] = True

    record = map_offer(payload, "nivoda")

    assert record.hold_id == "hold-9"
    assert record.availability == "on_hold"
    assert record.treated is True
    assert record.lab_grown is True


def test_integer_certificate_number_accepted():
    payload = payload_with("diamond.certificate.certNumber", 2200044320)

    assert map_offer(payload, "nivoda").certificate_number == "2200044320"


# Malformed payloads


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("diamond", REMOVE, "diamond is missing"),
        ("diamond", "x", "diamond is str 'x', expected an object"),
        ("diamond.certificate", REMOVE, "diamond.certificate is missing"),
        ("diamond.certificate", [], "diamond.certificate is list"),
        ("diamond.id", REMOVE, "diamond.id is missing"),
        ("diamond.id", "", "diamond.id is empty"),
        ("diamond.id", 17, "diamond.id is int 17"),
        ("id", REMOVE, "id is missing"),
        ("id", "", "id is empty"),
        ("diamond.certificate.certNumber", REMOVE, "certificate.certNumber is missing"),
        ("diamond.certificate.certNumber", "  ", "certificate.certNumber is empty"),
        ("price", REMOVE, "price is missing"),
        ("price", "100010", "price is str '100010', expected an integer of cents"),
        ("price", 1000.1, "price is float 1000.1"),
        ("price", True, "price is bool True"),
        ("price", 0, "price is 0 cents, expected more than 0"),
        ("price", -5, "price is -5 cents, expected more than 0"),
        ("diamond.certificate.carats", REMOVE, "certificate.carats is missing"),
        ("diamond.certificate.carats", 0, "certificate.carats is 0, expected more"),
        ("diamond.certificate.carats", -0.5, "certificate.carats is -0.5"),
        ("diamond.certificate.carats", "0.3", "certificate.carats is str '0.3'"),
        ("diamond.certificate.carats", True, "certificate.carats is bool True"),
        ("diamond.certificate.carats", 1e6, "certificate.carats is 1000000.0"),
        ("diamond.certificate.shape", "BLOB", "certificate.shape 'BLOB' is not a"),
        ("diamond.certificate.shape", REMOVE, "certificate.shape is missing"),
        ("diamond.certificate.shape", "", "certificate.shape is str ''"),
        ("diamond.certificate.shape", 3, "certificate.shape is int 3"),
        ("diamond.certificate.labgrown", REMOVE, "certificate.labgrown is missing"),
        ("diamond.certificate.labgrown", "false", "certificate.labgrown is str"),
        ("diamond.certificate.treated", 1, "certificate.treated is int 1"),
        ("diamond.certificate.color", 5, "certificate.color is int 5"),
        ("diamond.certificate.cut", ["EX"], "certificate.cut is list"),
        ("diamond.certificate.length", "4.3", "certificate.length is str '4.3'"),
        ("diamond.certificate.depth", {}, "certificate.depth is dict"),
        ("diamond.certificate.table", 150, "certificate.table is 150, expected 0"),
        ("diamond.certificate.depthPercentage", -2, "depthPercentage is -2"),
        ("diamond.availability", 1, "diamond.availability is int 1"),
        ("diamond.image", 5, "diamond.image is int 5"),
        ("diamond.v360", "url", "diamond.v360 is str"),
        ("diamond.supplier", "acme", "diamond.supplier is str"),
        ("diamond.delivery_time", 3, "diamond.delivery_time is int 3"),
        (
            "diamond.delivery_time.min_business_days",
            "3",
            "delivery_time.min_business_days is '3'",
        ),
        ("updatedAt", "yesterday", "updatedAt 'yesterday' is not an ISO 8601"),
        ("updatedAt", "2025-06-09T12:47:34", "updatedAt '2025-06-09T12:47:34' has no"),
        ("updatedAt", 1700000000, "updatedAt is int 1700000000"),
    ],
)
def test_malformed_payload_reason(path, value, reason):
    with pytest.raises(MappingError) as caught:
        map_offer(payload_with(path, value), "nivoda")

    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_payload_not_an_object():
    with pytest.raises(MappingError, match="payload is list"):
        map_offer([], "nivoda")


def test_nan_carats_rejected():
    payload = json.loads(json.dumps(PAYLOAD).replace('"carats": 0.3', '"carats": NaN'))

    with pytest.raises(MappingError, match="certificate.carats"):
        map_offer(payload, "nivoda")


# Agreement with the pydantic models and the simulator


def test_models_agree_with_mapping():
    offer = Offer.model_validate(PAYLOAD)
    record = map_offer(PAYLOAD, "nivoda")
    certificate = offer.diamond.certificate

    assert record.offer_id == offer.id
    assert record.supplier_stone_id == offer.diamond.id
    assert record.feed_price_cents == offer.price
    assert record.carats == certificate.carats
    assert record.certificate_number == certificate.cert_number
    assert record.depth_percent == certificate.depth_percentage
    assert record.table_percent == certificate.table
    assert record.measurements["length"] == str(certificate.length)
    assert record.measurements["crown_angle"] == str(certificate.crown_angle)
    assert record.lab_grown == certificate.labgrown
    assert record.hold_id == offer.diamond.hold_id
    assert record.supplier_name == offer.diamond.supplier.name
    assert record.delivery_days_max == offer.diamond.delivery_time.max_business_days
    assert record.source_updated_at == offer.updated_at


def test_every_simulator_item_maps():
    catalogue = Catalogue(60_000, seed=3)
    items = catalogue.build_items(range(0, 60_000, 30))

    records = [map_offer(json.loads(json.dumps(item)), "nivoda") for item in items]

    assert len(records) == 2000
    assert {record.shape for record in records} <= KNOWN_SHAPES
    assert {record.lab_grown for record in records} == {False, True}
    assert {record.availability for record in records} <= {
        "available",
        "on_hold",
        "unavailable",
        "sold",
    }
    for item, record in zip(items, records, strict=True):
        assert Offer.model_validate(item).price == record.feed_price_cents
