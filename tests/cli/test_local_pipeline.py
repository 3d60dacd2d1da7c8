"""A whole sync on the local host: scheduler, queue, worker, gate, consolidation."""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal

from cli.commands import run_sync


def _served(runtime) -> dict[str, tuple[str, int]]:
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "select supplier_stone_id, offer_id, priced_price_cents from diamonds"
            " where status = 'active'").fetchall()
    return {stone: (offer, price) for stone, offer, price in rows}


def _truth(simulator, run_summary) -> dict[str, tuple[str, int]]:
    stones = simulator.catalogue.truth({})
    return {
        s["stone_id"]: (s["offer_id"],
                        int((Decimal(s["price_cents"]) * Decimal("1.15")).quantize(
                            Decimal(1), ROUND_HALF_UP)))
        for s in stones if s["availability"] != "SOLD"
    }


def test_full_sync_serves_supplier_inventory(local_host, simulator):
    summary = run_sync(local_host, "full")

    assert summary["status"] == "completed"
    assert summary["expected"] == 2000
    assert summary["raw"] == 2000
    assert summary["consolidated"] == 2000
    assert summary["failed_partitions"] == 0
    assert _served(local_host.runtime) == _truth(simulator, summary)


def test_full_sync_advances_watermark_to_run_start(local_host):
    summary = run_sync(local_host, "full")

    with local_host.runtime.pool.connection() as conn:
        updated_to = conn.execute("select updated_to from run_metadata where run_id = %s",
                                  (summary["run_id"],)).fetchone()[0]
    mark = local_host.runtime.watermarks.read("nivoda")
    assert mark.updated_to == updated_to
    assert mark.run_id == summary["run_id"]


def test_incremental_sync_after_full_fetches_only_changes(local_host, simulator):
    run_sync(local_host, "full")
    simulator.catalogue.mutate({"price_changes": 5, "new_stones": 3}, seed=1)
    time.sleep(1.1)  # a run's window ends at its start, in whole seconds

    summary = run_sync(local_host, "incremental")

    assert summary["status"] == "completed"
    assert 8 <= summary["expected"] < 100
    assert _served(local_host.runtime) == _truth(simulator, summary)


def test_timer_function_starts_full_run_without_watermark(local_host):
    local_host.run_scheduler_timer()

    with local_host.runtime.pool.connection() as conn:
        run_id, run_type = conn.execute(
            "select run_id, run_type from run_metadata").fetchone()
    instance = local_host.wait_for(run_id, timeout=120)
    assert run_type == "full"
    assert instance.status == "Completed"
