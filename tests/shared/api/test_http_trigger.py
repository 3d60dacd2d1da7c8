"""The API through the real HTTP trigger function, as the Functions host calls it."""

from __future__ import annotations

import asyncio
import json
import time

import azure.functions as func

from shared.api.hmac_auth import sign
from tests.shared.api.test_holds import available_stone


def call(function_index, request: func.HttpRequest, client=None) -> func.HttpResponse:
    user_function = function_index["http_api"].get_user_function()
    # The durable-client wrapper wants a JSON client string; call the original.
    return asyncio.run(user_function.client_function(req=request, client=client))


def test_trigger_serves_search_with_api_key(function_index, stocked, read_headers):
    request = func.HttpRequest(
        "GET", "http://localhost:7071/api/v2/diamonds?shape=ROUND&lab_grown=false&limit=3",
        headers=read_headers, body=b"",
    )
    response = call(function_index, request)
    body = json.loads(response.get_body())
    assert response.status_code == 200
    assert len(body["items"]) == 3
    assert {item["shape"] for item in body["items"]} == {"ROUND"}
    assert {item["lab_grown"] for item in body["items"]} == {False}


def test_trigger_accepts_hmac_purchase(function_index, stocked):
    diamond_id, _ = available_stone(stocked)
    path = f"/api/v2/diamonds/{diamond_id}/purchase"
    body = b'{"customer_order_number": "PO 7"}'
    timestamp = str(int(time.time()))
    headers = {
        "X-Client-Id": "shop", "X-Timestamp": timestamp,
        "X-Signature": sign("new-secret", "POST", path, timestamp, body),
        "Idempotency-Key": "trigger-1", "Content-Type": "application/json",
    }
    request = func.HttpRequest("POST", f"http://localhost:7071{path}", headers=headers,
                               body=body)
    response = call(function_index, request)
    assert response.status_code == 201
    assert json.loads(response.get_body())["status"] == "completed"


def test_trigger_rejects_unsigned_request(function_index, api_runtime):
    request = func.HttpRequest("GET", "http://localhost:7071/api/v2/diamonds", body=b"")
    response = call(function_index, request)
    assert response.status_code == 401
    assert json.loads(response.get_body())["error"]["code"] == "unauthorized"
