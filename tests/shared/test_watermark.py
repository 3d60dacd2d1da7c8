"""Watermark stores: the Blob store against Azurite, the file store, and the gate.

The Blob store's writes carry an ETag condition, so of two writers that read
the same version only one succeeds. The watermark never moves backward and is
set to the run's `updated.to` only after the run consolidated.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.watermark import (
    BlobWatermarkStore,
    FileWatermarkStore,
    Watermark,
    WatermarkConflictError,
    advance_watermark,
)

FEED = "nivoda"
T0 = datetime(2026, 3, 1, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def blob_store(azurite) -> BlobWatermarkStore:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    container = service.get_container_client(f"watermarks-{uuid.uuid4().hex[:8]}")
    store = BlobWatermarkStore(container)
    store.ensure_container()
    store.ensure_container()  # a second call finds the container and does nothing
    yield store
    container.delete_container()
    service.close()


@pytest.fixture(params=["blob", "file"])
def store(request, tmp_path):
    if request.param == "file":
        return FileWatermarkStore(tmp_path / "watermarks")
    return request.getfixturevalue("blob_store")


def test_watermark_absent_reads_none(store):
    assert store.read(FEED) is None


def test_watermark_advance_then_read(store):
    assert advance_watermark(store, FEED, Watermark(T0, "run-1")) is True

    mark = store.read(FEED)
    assert mark.updated_to == T0
    assert mark.run_id == "run-1"
    assert mark.etag


def test_watermark_never_moves_backward(store):
    advance_watermark(store, FEED, Watermark(T0, "run-2"))

    assert (
        advance_watermark(store, FEED, Watermark(T0 - timedelta(hours=1), "run-1"))
        is False
    )
    assert advance_watermark(store, FEED, Watermark(T0, "run-3")) is False
    assert store.read(FEED).run_id == "run-2"


def test_watermark_stale_etag_conflicts(store):
    advance_watermark(store, FEED, Watermark(T0, "run-1"))
    stale = store.read(FEED)
    advance_watermark(store, FEED, Watermark(T0 + timedelta(hours=1), "run-2"))

    with pytest.raises(WatermarkConflictError, match="changed since it was read"):
        store.write(FEED, Watermark(T0 + timedelta(hours=2), "run-3"), stale.etag)

    assert store.read(FEED).run_id == "run-2"


def test_watermark_two_creators_one_conflict(store):
    store.write(FEED, Watermark(T0, "run-a"), None)

    with pytest.raises(WatermarkConflictError):
        store.write(FEED, Watermark(T0 + timedelta(hours=1), "run-b"), None)

    assert store.read(FEED).run_id == "run-a"


def test_watermark_two_writers_same_version(store):
    advance_watermark(store, FEED, Watermark(T0, "run-0"))
    seen = store.read(FEED)
    first = Watermark(T0 + timedelta(hours=1), "run-a")
    second = Watermark(T0 + timedelta(hours=2), "run-b")

    new_etag = store.write(FEED, first, seen.etag)
    with pytest.raises(WatermarkConflictError):
        store.write(FEED, second, seen.etag)

    current = store.read(FEED)
    assert current.run_id == "run-a"
    assert current.etag == new_etag


def test_watermark_racing_threads_keep_one_value(blob_store):
    advance_watermark(blob_store, FEED, Watermark(T0, "run-0"))
    seen = blob_store.read(FEED)
    barrier = threading.Barrier(6)
    outcomes: dict[str, str] = {}

    def write(index: int) -> None:
        mark = Watermark(T0 + timedelta(hours=index + 1), f"run-{index + 1}")
        barrier.wait()
        try:
            blob_store.write(FEED, mark, seen.etag)
            outcomes[mark.run_id] = "written"
        except WatermarkConflictError:
            outcomes[mark.run_id] = "conflict"

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [run_id for run_id, outcome in outcomes.items() if outcome == "written"]
    assert len(outcomes) == 6
    assert len(winners) == 1
    assert blob_store.read(FEED).run_id == winners[0]


def _make_run(runtime, run_id: str, updated_to: datetime) -> None:
    from shared import runs
    from shared.partitioning import PartitionPlan

    with runtime.pool.connection() as conn:
        runs.create_run(
            conn,
            run_id=run_id,
            feed=FEED,
            run_type="incremental",
            updated_from=updated_to - timedelta(hours=1),
            updated_to=updated_to,
            plan=PartitionPlan(total=0, partitions=[], buckets=[], count_queries=0),
            trace_id="t",
        )


def test_gate_moves_watermark_after_consolidation(runtime, blob_store):
    from shared import gate

    runtime._overrides["watermarks"] = blob_store
    _make_run(runtime, "run-ok", T0)

    result = gate.finalize_run(runtime, "run-ok", partial=False)

    mark = blob_store.read(FEED)
    assert result["watermark_advanced"] is True
    assert mark.updated_to == T0  # the run's updated.to, not the time it finished
    assert mark.run_id == "run-ok"


@pytest.mark.parametrize("kind", ["run_failed", "consolidation_failed", "run_stuck"])
def test_gate_failed_run_keeps_watermark(runtime, blob_store, kind):
    from shared import gate
    from shared.runs import get_run

    runtime._overrides["watermarks"] = blob_store
    advance_watermark(blob_store, FEED, Watermark(T0, "run-before"))
    _make_run(runtime, "run-bad", T0 + timedelta(hours=1))

    gate.fail_run(runtime, "run-bad", kind, "3 of 10 partitions succeeded")

    assert blob_store.read(FEED).run_id == "run-before"
    with runtime.pool.connection() as conn:
        run = get_run(conn, "run-bad")
    assert run["status"] == "failed"
    assert run["watermark_advanced"] is False
    assert run["failure_reason"] == "3 of 10 partitions succeeded"


def test_gate_lost_race_reports_conflict(runtime, blob_store):
    from shared import gate

    class RacingStore:
        """Another run writes between this run's read and its write."""

        def read(self, feed):
            return blob_store.read(feed)

        def write(self, feed, mark, expected_etag):
            blob_store.write(
                feed, Watermark(T0 + timedelta(hours=5), "run-other"), expected_etag
            )
            return blob_store.write(feed, mark, expected_etag)

    runtime._overrides["watermarks"] = RacingStore()
    advance_watermark(blob_store, FEED, Watermark(T0, "run-before"))
    _make_run(runtime, "run-late", T0 + timedelta(hours=1))

    result = gate.finalize_run(runtime, "run-late", partial=False)

    assert result["watermark_advanced"] is False
    assert blob_store.read(FEED).run_id == "run-other"
