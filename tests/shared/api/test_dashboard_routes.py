"""Static files of the admin dashboard."""

from __future__ import annotations

import pytest


def test_dashboard_asset_is_served(client):
    response = client.get("/dashboard/static/app.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "name",
    ["%00", "app.js%00.png", "a" * 5000, "..%2f..%2fapp.py", "%2fetc%2fhostname", ""],
    ids=["nul", "nul suffix", "long name", "parent folder", "absolute path", "empty"],
)
def test_dashboard_asset_outside_or_invalid_is_404(client, name):
    response = client.get(f"/dashboard/static/{name}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert len(error["message"]) < 300
