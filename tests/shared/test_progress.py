"""Error log rows written by log_error."""

from __future__ import annotations

import psycopg

from shared.progress import log_error


def test_log_error_stores_nul_as_replacement(clean_db):
    with psycopg.connect(clean_db) as conn:
        log_error(
            conn, "worker", "bad\x00message", run_id="run\x00",
            supplier_stone_id="stone\x00",
            details={"body\x00": "a\x00b", "items": ["c\x00", 1], "count": 2},
        )
        conn.commit()
        row = conn.execute(
            "select message, run_id, supplier_stone_id, details from error_logs"
        ).fetchone()

    message, run_id, stone_id, details = row
    assert message == "bad\ufffdmessage"
    assert run_id == "run\ufffd"
    assert stone_id == "stone\ufffd"
    assert details == {"body\ufffd": "a\ufffdb", "items": ["c\ufffd", 1], "count": 2}


def test_log_error_without_details(clean_db):
    with psycopg.connect(clean_db) as conn:
        log_error(conn, "gate", "run failed", run_id="run-1", partition_id=3)
        conn.commit()
        row = conn.execute(
            "select source, message, run_id, partition_id, details from error_logs"
        ).fetchone()

    assert row == ("gate", "run failed", "run-1", 3, None)
