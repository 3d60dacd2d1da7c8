"""Pricing rule routes: list, create, update, deactivate, preview."""

from __future__ import annotations

RULE = {"priority": 10, "shapes": ["ROUND"], "markup_ratio": "1.5000", "rating": 8,
        "description": "Rounds"}


def test_list_rules_needs_read(client, read_headers):
    response = client.get("/api/v2/pricing-rules", headers=read_headers)
    assert response.status_code == 200
    assert [rule["priority"] for rule in response.json()] == [1000]


def test_create_rule_reprices(client, stocked, admin_headers):
    response = client.post("/api/v2/pricing-rules", json=RULE, headers=admin_headers)
    assert response.status_code == 201
    body = response.json()
    assert body["rule"]["markup_ratio"] == "1.5000"
    with stocked.pool.connection() as conn:
        rounds = conn.execute(
            "select count(*) from diamonds where shape = 'ROUND'"
        ).fetchone()[0]
        priced = conn.execute(
            "select count(*) from diamonds where shape = 'ROUND' and markup_ratio = 1.5"
        ).fetchone()[0]
    assert body["reprice"]["changed"] == rounds
    assert priced == rounds


def test_create_rule_needs_admin(client, read_headers):
    response = client.post("/api/v2/pricing-rules", json=RULE, headers=read_headers)
    assert response.status_code == 403


def test_invalid_rule_is_422(client, admin_headers):
    bad = dict(RULE, rating=11)
    response = client.post("/api/v2/pricing-rules", json=bad, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "rating"


def test_update_and_deactivate_rule(client, stocked, admin_headers):
    rule_id = client.post("/api/v2/pricing-rules", json=RULE,
                          headers=admin_headers).json()["rule"]["id"]
    updated = client.put(f"/api/v2/pricing-rules/{rule_id}",
                         json=dict(RULE, markup_ratio="1.2"), headers=admin_headers)
    assert updated.status_code == 200
    assert updated.json()["rule"]["markup_ratio"] == "1.2000"
    deactivated = client.delete(f"/api/v2/pricing-rules/{rule_id}", headers=admin_headers)
    assert deactivated.status_code == 200
    assert deactivated.json()["rule"]["active"] is False
    with stocked.pool.connection() as conn:
        ratios = conn.execute("select distinct markup_ratio from diamonds").fetchall()
    assert [str(row[0]) for row in ratios] == ["1.1500"]


def test_unknown_rule_is_404(client, admin_headers):
    put = client.put("/api/v2/pricing-rules/99999", json=RULE, headers=admin_headers)
    delete = client.delete("/api/v2/pricing-rules/99999", headers=admin_headers)
    assert put.status_code == 404
    assert delete.status_code == 404


def test_preview_changes_nothing(client, stocked, admin_headers):
    response = client.post("/api/v2/pricing-rules/preview", json=RULE,
                           headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["changed"] > 0
    rules = client.get("/api/v2/pricing-rules", headers=admin_headers).json()
    assert len(rules) == 1


def test_preview_unknown_rule_is_404(client, admin_headers):
    response = client.post("/api/v2/pricing-rules/preview", params={"rule_id": 99999},
                           json=RULE, headers=admin_headers)
    assert response.status_code == 404
