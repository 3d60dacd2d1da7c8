"""The work item message body."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.work_item import WorkItem

FIELDS = {
    "feed": "nivoda",
    "run_id": "run-1",
    "partition_id": 0,
    "price_min_cents": 0,
    "price_max_cents": 100,
    "expected_count": 5,
    "offset": 0,
    "page_size": 50,
    "updated_from": "2000-01-01T00:00:00Z",
    "updated_to": "2020-01-01T00:00:00Z",
    "trace_id": "trace-1",
}


def test_work_item_round_trips():
    item = WorkItem.from_body(json.dumps(FIELDS).encode())
    assert WorkItem.from_body(item.to_body()) == item


@pytest.mark.parametrize("field", ["feed", "run_id", "trace_id"])
def test_work_item_rejects_nul_in_text(field):
    body = json.dumps({**FIELDS, field: "a\x00b"}).encode()
    with pytest.raises(ValidationError, match="NUL"):
        WorkItem.from_body(body)
