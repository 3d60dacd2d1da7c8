"""The error envelope for request bodies of the wrong media type."""

from __future__ import annotations

import json

import pytest

RULES = "/api/v2/pricing-rules"
RULE = {"priority": 50, "markup_ratio": "1.2", "rating": 5}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None]
)
def test_json_body_with_other_media_type_is_415(client, admin_headers, content_type):
    headers = dict(admin_headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(RULES, content=json.dumps(RULE).encode(), headers=headers)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


def test_json_suffix_media_type_is_parsed(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/merge-patch+json"}
    response = client.post(RULES, content=json.dumps(RULE).encode(), headers=headers)
    assert response.status_code == 201


def test_missing_body_is_still_422(client, admin_headers):
    response = client.post(RULES, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_invalid_json_body_is_still_422(client, admin_headers):
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = client.post(RULES, content=b'{"priority": 1,', headers=headers)
    assert response.status_code == 422
