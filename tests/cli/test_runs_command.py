"""`diamond-opus runs`: retry, resume, consolidate and cancel from the command line."""

from __future__ import annotations

import json

import pytest

from cli.commands import run_sync
from cli.main import main


@pytest.fixture
def cli_env(monkeypatch, runtime, tmp_path):
    settings = runtime.settings
    for name, value in {
        "DATABASE_URL": settings.database_url, "NIVODA_ENDPOINT": settings.nivoda_endpoint,
        "WATERMARK_DIR": settings.watermark_dir, "GATE_POLL_SECONDS": "0.1",
        "GATE_PARTIAL_DELAY_SECONDS": "0", "NIVODA_REQUESTS_PER_SECOND": "2000",
    }.items():
        monkeypatch.setenv(name, value)


def _fail_one_partition(runtime, run_id: str) -> None:
    with runtime.pool.connection() as conn:
        conn.execute("update partition_progress set status = 'failed',"
                     " last_error = 'supplier timed out' where run_id = %s"
                     " and partition_id = 0", (run_id,))
        conn.execute("update run_metadata set status = 'failed' where run_id = %s",
                     (run_id,))


def _run_status(runtime, run_id: str) -> str:
    with runtime.pool.connection() as conn:
        return conn.execute("select status from run_metadata where run_id = %s",
                            (run_id,)).fetchone()[0]


def test_runs_retry_refetches_failed_partition(local_host, cli_env, capsys):
    summary = run_sync(local_host, "full")
    _fail_one_partition(local_host.runtime, summary["run_id"])
    local_host.stop()

    code = main(["runs", "retry", summary["run_id"]])

    output = json.loads(capsys.readouterr().out)
    assert code == 0
    assert output["gate"]["status"] == "completed"
    assert _run_status(local_host.runtime, summary["run_id"]) == "completed"


def test_runs_retry_without_failures_is_an_error(local_host, cli_env, capsys):
    summary = run_sync(local_host, "full")
    local_host.stop()

    code = main(["runs", "retry", summary["run_id"]])

    assert code == 2
    assert "no failed partitions" in capsys.readouterr().err


def _active_stones(runtime) -> int:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select count(*) from diamonds where status = 'active'").fetchone()[0]


@pytest.mark.parametrize("action", ["resume", "consolidate"])
def test_older_full_run_retires_nothing(local_host, cli_env, capsys, action):
    older = run_sync(local_host, "full")
    newer = run_sync(local_host, "full")
    local_host.stop()
    stones = _active_stones(local_host.runtime)

    code = main(["runs", action, older["run_id"]])

    output = json.loads(capsys.readouterr().out)
    assert code == 0
    assert stones == newer["expected"]
    assert output["gate"]["retired"] == 0
    assert _active_stones(local_host.runtime) == stones


def _add_run(runtime, run_id: str, status: str, minutes_ago: int = 0) -> None:
    with runtime.pool.connection() as conn:
        conn.execute(
            "insert into run_metadata (run_id, feed, run_type, status, updated_from,"
            " updated_to, expected_count, partition_count, started_at) values"
            " (%s, 'nivoda', 'full', %s, now(), now(), 0, 0,"
            " now() - make_interval(mins => %s))",
            (run_id, status, minutes_ago),
        )


@pytest.mark.parametrize("action", ["resume", "consolidate"])
def test_runs_on_cancelled_run_is_an_error(runtime, cli_env, capsys, action):
    _add_run(runtime, "cancelled-run", "cancelled")

    code = main(["runs", action, "cancelled-run", "--workers", "1"])

    assert code == 2
    assert "run cancelled-run is cancelled" in capsys.readouterr().err
    assert _run_status(runtime, "cancelled-run") == "cancelled"


@pytest.mark.parametrize("action", ["resume", "consolidate"])
def test_runs_while_other_run_active_is_an_error(runtime, cli_env, capsys, action):
    _add_run(runtime, "older-run", "completed", minutes_ago=10)
    _add_run(runtime, "newer-run", "consolidating")

    code = main(["runs", action, "older-run", "--workers", "1"])

    assert code == 2
    assert "run newer-run is still in progress" in capsys.readouterr().err
    assert _run_status(runtime, "older-run") == "completed"


def test_runs_cancel_unknown_run(cli_env, capsys):
    code = main(["runs", "cancel", "no-such-run"])

    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_sync_while_run_active_names_the_cancel_command(runtime, cli_env, capsys):
    with runtime.pool.connection() as conn:
        conn.execute(
            "insert into run_metadata (run_id, feed, run_type, updated_from, updated_to,"
            " expected_count, partition_count) values ('stuck-run', 'nivoda', 'full',"
            " now(), now(), 0, 0)")

    code = main(["sync", "--full", "--workers", "1"])

    assert code == 2
    assert "diamond-opus runs cancel stuck-run" in capsys.readouterr().err


def test_requeue_failed_command(runtime, cli_env, capsys):
    with runtime.pool.connection() as conn:
        conn.execute(
            "insert into raw_diamonds_nivoda (supplier_stone_id, run_id, payload,"
            " payload_hash, status, failure_reason, last_seen_run_id)"
            " values ('stone-1', 'run-1', '{}', 'h', 'failed', 'bad shape', 'run-1')"
        )

    assert main(["requeue-failed"]) == 0

    assert capsys.readouterr().out.strip() == (
        "1 failed raw rows queued for the next consolidation"
    )
    with runtime.pool.connection() as conn:
        queued = conn.execute("select count(*) from raw_diamonds_nivoda_pending").fetchone()
    assert queued == (1,)


def test_purchases_release_interrupted_command(runtime, cli_env, capsys):
    with runtime.pool.connection() as conn:
        conn.execute(
            "insert into purchase_history (idempotency_key, request_hash, status,"
            " updated_at) values ('key:old', 'h', 'pending', now() - interval '2 hours'),"
            " ('key:new', 'h', 'pending', now())"
        )

    assert main(["purchases", "release-interrupted", "--older-than-minutes", "60"]) == 0

    output = capsys.readouterr().out
    assert "key key:old" in output
    assert "key:new" not in output
    assert output.strip().endswith(
        "1 interrupted purchases released; check the supplier's orders for their stones"
    )
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "select idempotency_key, status, retryable from purchase_history"
            " order by idempotency_key"
        ).fetchall()
    assert rows == [("key:new", "pending", False), ("key:old", "failed", True)]


def test_purchases_release_rejects_zero_minutes(cli_env, capsys):
    status = main(["purchases", "release-interrupted", "--older-than-minutes", "0"])

    assert status == 2
    assert "expected at least 1" in capsys.readouterr().err
