"""Operator triggers: start, cancel, resume, consolidate and retry runs."""

from __future__ import annotations

import pytest

from cli.local_host import LocalHost
from shared.api import create_app
from tests.shared.api.conftest import TestClient


@pytest.fixture
def host(api_runtime):
    local = LocalHost(api_runtime, worker_threads=4, lock_seconds=30).start()
    yield local
    local.stop()


@pytest.fixture
def trigger_client(api_runtime, host):
    app = create_app(api_runtime, durable_client=host.client)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def run_status(runtime, run_id: str) -> str:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select status from run_metadata where run_id = %s", (run_id,)
        ).fetchone()[0]


def test_start_run_completes(trigger_client, host, api_runtime, admin_headers):
    response = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    )
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    instance = host.wait_for(run_id, timeout=120)
    assert instance.status == "Completed"
    assert run_status(api_runtime, run_id) == "completed"
    with api_runtime.pool.connection() as conn:
        stones = conn.execute("select count(*) from diamonds").fetchone()[0]
    assert stones > 0


def test_start_run_while_active_is_409(trigger_client, api_runtime, admin_headers):
    first = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    )
    with api_runtime.pool.connection() as conn:
        # Keep the first run active whatever its progress.
        conn.execute("update run_metadata set status = 'running'")
        conn.commit()
    second = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "incremental"}, headers=admin_headers
    )
    assert second.status_code == 409
    assert second.json()["error"]["details"]["active_run_id"] == first.json()["run_id"]


def test_start_run_bad_type_is_422(trigger_client, admin_headers):
    response = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "weekly"}, headers=admin_headers
    )
    assert response.status_code == 422


def test_cancel_marks_run_cancelled(trigger_client, api_runtime, admin_headers):
    run_id = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    ).json()["run_id"]
    with api_runtime.pool.connection() as conn:
        conn.execute("update run_metadata set status = 'running' where run_id = %s",
                     (run_id,))
        conn.commit()
    response = trigger_client.post(
        "/api/v2/triggers/cancel", json={"run_id": run_id}, headers=admin_headers
    )
    assert response.status_code == 200
    assert run_status(api_runtime, run_id) == "cancelled"
    again = trigger_client.post(
        "/api/v2/triggers/cancel", json={"run_id": run_id}, headers=admin_headers
    )
    assert again.status_code == 409


@pytest.mark.parametrize("action", ["cancel", "resume", "consolidate", "retry-failed"])
def test_unknown_run_is_404(trigger_client, admin_headers, action):
    response = trigger_client.post(
        f"/api/v2/triggers/{action}", json={"run_id": "no-such-run"}, headers=admin_headers
    )
    assert response.status_code == 404
    assert "no-such-run" in response.json()["error"]["message"]


def test_retry_failed_reopens_partitions(trigger_client, host, api_runtime, admin_headers):
    run_id = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    ).json()["run_id"]
    host.wait_for(run_id, timeout=120)
    with api_runtime.pool.connection() as conn:
        conn.execute(
            "update partition_progress set status = 'failed', last_error = 'test'"
            " where run_id = %s and partition_id = 0",
            (run_id,),
        )
        conn.commit()
    response = trigger_client.post(
        "/api/v2/triggers/retry-failed", json={"run_id": run_id}, headers=admin_headers
    )
    assert response.status_code == 202
    assert response.json()["details"]["partition_ids"] == [0]
    host.wait_for(response.json()["instance_id"], timeout=120)
    with api_runtime.pool.connection() as conn:
        status, pass_number = conn.execute(
            "select status, pass from partition_progress where run_id = %s"
            " and partition_id = 0",
            (run_id,),
        ).fetchone()
    assert status == "done"
    assert pass_number == 2


def test_retry_without_failures_is_409(trigger_client, host, admin_headers):
    run_id = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    ).json()["run_id"]
    host.wait_for(run_id, timeout=120)
    response = trigger_client.post(
        "/api/v2/triggers/retry-failed", json={"run_id": run_id}, headers=admin_headers
    )
    assert response.status_code == 409


@pytest.mark.parametrize("action", ["resume", "consolidate"])
def test_resume_and_consolidate_start_gate(
    trigger_client, host, api_runtime, admin_headers, action
):
    run_id = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    ).json()["run_id"]
    host.wait_for(run_id, timeout=120)
    response = trigger_client.post(
        f"/api/v2/triggers/{action}", json={"run_id": run_id}, headers=admin_headers
    )
    assert response.status_code == 202
    instance = host.wait_for(response.json()["instance_id"], timeout=120)
    assert instance.status == "Completed"


def add_run(runtime, run_id: str, status: str, minutes_ago: int = 0) -> None:
    with runtime.pool.connection() as conn:
        conn.execute(
            "insert into run_metadata (run_id, feed, run_type, status, updated_from,"
            " updated_to, expected_count, partition_count, started_at) values"
            " (%s, %s, 'full', %s, now(), now(), 0, 0,"
            " now() - make_interval(mins => %s))",
            (run_id, runtime.settings.feed, status, minutes_ago),
        )
        conn.commit()


@pytest.mark.parametrize("action", ["resume", "consolidate", "retry-failed"])
def test_cancelled_run_is_409(trigger_client, api_runtime, admin_headers, action):
    add_run(api_runtime, "cancelled-run", "cancelled")

    response = trigger_client.post(
        f"/api/v2/triggers/{action}", json={"run_id": "cancelled-run"},
        headers=admin_headers,
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "cancelled-run is cancelled" in error["message"]
    assert run_status(api_runtime, "cancelled-run") == "cancelled"


@pytest.mark.parametrize("action", ["resume", "consolidate", "retry-failed"])
def test_other_active_run_is_409(trigger_client, api_runtime, admin_headers, action):
    add_run(api_runtime, "older-run", "failed", minutes_ago=10)
    add_run(api_runtime, "newer-run", "running")

    response = trigger_client.post(
        f"/api/v2/triggers/{action}", json={"run_id": "older-run"},
        headers=admin_headers,
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert "newer-run is still in progress" in error["message"]
    assert error["details"] == {"active_run_id": "newer-run"}
    assert run_status(api_runtime, "older-run") == "failed"
    assert run_status(api_runtime, "newer-run") == "running"


def test_resume_of_active_run_itself(trigger_client, host, api_runtime, admin_headers):
    run_id = trigger_client.post(
        "/api/v2/triggers/run", json={"run_type": "full"}, headers=admin_headers
    ).json()["run_id"]
    host.wait_for(run_id, timeout=120)
    with api_runtime.pool.connection() as conn:
        # A run whose gate died stays running, which only its own resume fixes.
        conn.execute("update run_metadata set status = 'running' where run_id = %s",
                     (run_id,))
        conn.commit()

    response = trigger_client.post(
        "/api/v2/triggers/resume", json={"run_id": run_id}, headers=admin_headers
    )

    assert response.status_code == 202
    instance = host.wait_for(response.json()["instance_id"], timeout=120)
    assert instance.status == "Completed"
    assert run_status(api_runtime, run_id) == "completed"


def test_triggers_without_durable_client_are_503(client, admin_headers):
    response = client.post(
        "/api/v2/triggers/resume", json={"run_id": "x"}, headers=admin_headers
    )
    assert response.status_code == 503
