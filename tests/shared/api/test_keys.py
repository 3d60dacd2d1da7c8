"""API key administration routes."""

from __future__ import annotations


def test_create_key_shows_it_once(client, admin_headers):
    response = client.post(
        "/api/v2/api-keys", json={"client_name": "shop", "permissions": ["read"]},
        headers=admin_headers,
    )
    assert response.status_code == 201
    key = response.json()["key"]
    assert client.get("/api/v2/diamonds", headers={"X-API-Key": key}).status_code == 200
    listed = client.get("/api/v2/api-keys", headers=admin_headers).json()
    assert all("key" not in row for row in listed)
    assert response.json()["id"] in {row["id"] for row in listed}


def test_create_key_rejects_unknown_permission(client, admin_headers):
    response = client.post(
        "/api/v2/api-keys", json={"client_name": "shop", "permissions": ["root"]},
        headers=admin_headers,
    )
    assert response.status_code == 422


def test_create_key_rejects_expiry_after_year_9999(client, admin_headers):
    body = {
        "client_name": "shop",
        "permissions": ["read"],
        "expires_at": "9999-12-31T23:59:59-14:00",
    }
    response = client.post("/api/v2/api-keys", json=body, headers=admin_headers)
    assert response.status_code == 422
    assert "year 9999" in response.json()["error"]["message"]
    listed = client.get("/api/v2/api-keys", headers=admin_headers)
    assert listed.status_code == 200
    assert "shop" not in {row["client_name"] for row in listed.json()}


def test_create_key_reads_naive_expiry_as_utc(client, admin_headers):
    body = {
        "client_name": "shop",
        "permissions": ["read"],
        "expires_at": "2999-01-01T00:00:00",
    }
    response = client.post("/api/v2/api-keys", json=body, headers=admin_headers)
    assert response.status_code == 201
    assert response.json()["expires_at"] == "2999-01-01T00:00:00Z"


def test_revoke_key(client, admin_headers):
    created = client.post(
        "/api/v2/api-keys", json={"client_name": "shop", "permissions": ["read"]},
        headers=admin_headers,
    ).json()
    response = client.delete(f"/api/v2/api-keys/{created['id']}", headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["active"] is False
    search = client.get("/api/v2/diamonds", headers={"X-API-Key": created["key"]})
    assert search.status_code == 401


def test_revoke_unknown_key_is_404(client, admin_headers):
    response = client.delete("/api/v2/api-keys/987654", headers=admin_headers)
    assert response.status_code == 404


def test_list_active_keys_only(client, admin_headers):
    created = client.post(
        "/api/v2/api-keys", json={"client_name": "gone", "permissions": ["read"]},
        headers=admin_headers,
    ).json()
    client.delete(f"/api/v2/api-keys/{created['id']}", headers=admin_headers)
    listed = client.get(
        "/api/v2/api-keys", params={"include_revoked": "false"}, headers=admin_headers
    ).json()
    assert created["id"] not in {row["id"] for row in listed}


def test_create_key_rejects_past_expiry(client, admin_headers):
    body = {"client_name": "shop", "permissions": ["read"],
            "expires_at": "2000-01-01T00:00:00Z"}

    response = client.post("/api/v2/api-keys", json=body, headers=admin_headers)

    assert response.status_code == 422
    assert "in the past" in response.json()["error"]["message"]
