"""Pydantic item models: tolerant of new fields, strict about types."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fake_nivoda_server import SAMPLE_ITEM
from pydantic import ValidationError

from shared.nivoda.models import Offer


def item_with(path: str, value) -> dict:
    item = copy.deepcopy(SAMPLE_ITEM)
    *parents, leaf = path.split(".")
    target = item
    for name in parents:
        target = target[name]
    target[leaf] = value
    return item


def test_parses_full_item():
    offer = Offer.model_validate(SAMPLE_ITEM)

    assert offer.id == SAMPLE_ITEM["id"]
    assert offer.price == 100010
    assert offer.updated_at == datetime(2025, 6, 9, 12, 47, 34, 250000, tzinfo=UTC)
    assert offer.diamond.id == SAMPLE_ITEM["diamond"]["id"]
    assert offer.diamond.hold_id is None
    assert offer.diamond.supplier.legal_name == "Antwerp Rough Co BV"
    assert offer.diamond.delivery_time.min_business_days == 3
    assert offer.diamond.v360.url.endswith("index.html")
    certificate = offer.diamond.certificate
    assert certificate.cert_number == "2200044320"
    assert certificate.flo_int == "Very_Strong"
    assert certificate.labgrown is False


def test_decimals_keep_json_text():
    offer = Offer.model_validate(json.loads(json.dumps(SAMPLE_ITEM)))
    certificate = offer.diamond.certificate

    assert certificate.carats == Decimal("0.3")
    assert certificate.depth_percentage == Decimal("61.7")
    assert certificate.table == Decimal(57)
    assert certificate.crown_height == Decimal("15.0")


def test_ignores_unknown_fields():
    item = item_with("diamond.certificate.new_grading_field", "x")

    offer = Offer.model_validate(item)

    assert not hasattr(offer.diamond.certificate, "new_grading_field")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("price", "100010"),
        ("price", 1000.1),
        ("price", 0),
        ("diamond.certificate.carats", "0.3"),
        ("diamond.certificate.carats", True),
        ("diamond.certificate.carats", 0),
        ("diamond.certificate.labgrown", "false"),
        ("diamond.certificate.labgrown", 0),
        ("diamond.certificate.treated", "no"),
        ("diamond.certificate.certNumber", ""),
        ("diamond.id", ""),
        ("diamond.certificate", None),
        ("diamond.delivery_time.min_business_days", "3"),
    ],
)
def test_rejects_wrong_types(path, value):
    with pytest.raises(ValidationError):
        Offer.model_validate(item_with(path, value))
