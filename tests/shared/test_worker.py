"""The worker function under redelivery, duplicate sends, crashes and failures.

Every test calls the indexed `worker` function with real Service Bus trigger
messages built from a LocalQueue, against PostgreSQL and the simulator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from types import SimpleNamespace

import pytest
from azure.functions.servicebus import ServiceBusMessage

from shared import raw_store
from shared import worker as worker_module
from shared.local_queue import LocalQueue, QueuedMessage
from shared.nivoda import NivodaClient
from shared.json_codec import OversizedInteger
from shared.scheduler import start_run
from shared.work_item import WorkItem
from simulator import server as simulator_server

PAGE_SIZE = 50


@pytest.fixture
def queue(runtime) -> LocalQueue:
    local = LocalQueue(max_delivery_count=runtime.settings.max_delivery_count)
    runtime._overrides["sender"] = local
    return local


@pytest.fixture
def worker(function_index):
    return function_index["worker"].get_user_function()


def trigger_message(message: QueuedMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        delivery_count=message.delivery_count,
        application_properties={},
        user_properties={},
        content_type="application/json",
    )


def deliver(
    worker, queue: LocalQueue, message: QueuedMessage, *, lose_completion: bool = False
) -> bool:
    """Run the worker on a locked message and settle it; False when it raised."""
    try:
        worker(trigger_message(message))
    except Exception:  # noqa: BLE001 - the trigger abandons on any exception
        queue.abandon(message)
        return False
    if lose_completion:
        queue.abandon(message)  # the lock expired before the completion arrived
    else:
        queue.complete(message)
    return True


def drain(
    worker,
    queue: LocalQueue,
    *,
    lose_completion_of=lambda message: False,
    max_deliveries: int = 2000,
) -> int:
    """Deliver messages until the queue is empty; return the number of deliveries."""
    for count in range(max_deliveries):
        message = queue.receive()
        if message is None:
            return count
        deliver(worker, queue, message, lose_completion=lose_completion_of(message))
    raise AssertionError(f"queue not empty after {max_deliveries} deliveries")


def progress_rows(runtime, run_id: str) -> list[tuple]:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select partition_id, status, pass, next_offset, expected_count,"
            " stones_fetched, pages_fetched, drifted, last_error"
            " from partition_progress where run_id = %s order by partition_id",
            (run_id,),
        ).fetchall()


def raw_rows(runtime) -> dict[str, tuple]:
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "select supplier_stone_id, payload_hash, status, p.raw_id is not null,"
            " last_seen_run_id from raw_diamonds_nivoda r"
            " left join raw_diamonds_nivoda_pending p on p.raw_id = r.id"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def assert_clean_run(runtime, run_id: str, expected_total: int) -> None:
    """Every partition done once, counters equal to the count, every stone stored."""
    rows = progress_rows(runtime, run_id)
    for (
        partition_id,
        status,
        pass_number,
        next_offset,
        expected,
        stones,
        pages,
        drifted,
        error,
    ) in rows:
        assert status == "done", (partition_id, error)
        assert pass_number == 1, partition_id
        assert next_offset == expected, partition_id
        assert stones == expected, partition_id
        assert pages == math.ceil(expected / PAGE_SIZE), partition_id
        assert drifted is False, partition_id
    assert sum(row[5] for row in rows) == expected_total
    stored = raw_rows(runtime)
    assert len(stored) == expected_total
    assert {row[3] for row in stored.values()} == {run_id}
    assert {row[1] for row in stored.values()} == {"pending"}
    assert all(row[2] for row in stored.values()), "every new stone is queued"


def test_worker_clean_run_stores_every_stone(runtime, queue, worker, simulator):
    started = start_run(runtime, run_type="full")

    drain(worker, queue)

    assert started.expected_count == 2000
    assert_clean_run(runtime, started.run_id, 2000)


def test_start_run_rechecks_active_run_after_scan(runtime, queue, monkeypatch):
    """A run set running while the supplier is scanned stops the start."""
    from shared import scheduler

    scan = scheduler._scan
    first = {}

    def scan_while_another_starts(*args):
        if "started" not in first:
            first["started"] = True
            first["run"] = start_run(runtime, run_type="full")
        return scan(*args)

    monkeypatch.setattr(scheduler, "_scan", scan_while_another_starts)

    with pytest.raises(scheduler.RunAlreadyActiveError) as raised:
        start_run(runtime, run_type="full")

    with runtime.pool.connection() as conn:
        run_ids = [row[0] for row in conn.execute("select run_id from run_metadata")]
    assert raised.value.run_id == first["run"].run_id
    assert run_ids == [first["run"].run_id]


def test_worker_redelivery_changes_nothing(runtime, queue, worker):
    started = start_run(runtime, run_type="full")
    delivered: set[str] = set()

    def lose_first_completion(message: QueuedMessage) -> bool:
        first = message.message_id not in delivered
        delivered.add(message.message_id)
        return first

    drain(worker, queue, lose_completion_of=lose_first_completion)

    assert_clean_run(runtime, started.run_id, 2000)
    with runtime.pool.connection() as conn:
        outcomes = dict(
            conn.execute(
                "select outcome, count(*) from worker_runs where run_id = %s group by outcome",
                (started.run_id,),
            ).fetchall()
        )
    assert outcomes == {
        "fetched": sum(row[6] for row in progress_rows(runtime, started.run_id))
    }
    assert queue.dead_letters == []


def test_worker_duplicate_send_dropped(runtime, queue, worker):
    started = start_run(runtime, run_type="full")
    first_pages = []
    while (message := queue.receive()) is not None:
        first_pages.append(message)
    for message in first_pages:
        queue.abandon(message)
    waiting = queue.active_count()

    queue.send([WorkItem.from_body(message.body) for message in first_pages])

    assert queue.duplicates_dropped == len(first_pages)
    assert queue.active_count() == waiting
    drain(worker, queue)
    assert_clean_run(runtime, started.run_id, 2000)


def test_worker_duplicate_delivery_of_old_page(runtime, queue, worker):
    started = start_run(runtime, run_type="full")
    message = queue.receive()
    stale_copy = trigger_message(message)
    deliver(worker, queue, message)
    before = progress_rows(runtime, started.run_id)

    worker(stale_copy)  # the same page again, as a second copy would arrive

    assert progress_rows(runtime, started.run_id) == before
    drain(worker, queue)
    assert_clean_run(runtime, started.run_id, 2000)


def replace_nivoda(runtime, *, password: str | None = None) -> None:
    """Swap in a client without retries; close the old one so no socket leaks."""
    s = runtime.settings
    runtime.nivoda.close()
    runtime._overrides["nivoda"] = NivodaClient(
        s.nivoda_endpoint,
        s.nivoda_username,
        password or s.nivoda_password,
        max_retries=0,
        requests_per_second=1000,
    )


class FailingSender:
    """Send through `queue`, but raise on the first `failures` sends."""

    def __init__(self, queue: LocalQueue, failures: int) -> None:
        self._queue = queue
        self.failures = failures

    def send(self, items):
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Service Bus unreachable (test)")
        self._queue.send(items)


def test_worker_crash_before_next_page_resends(runtime, queue, worker):
    started = start_run(runtime, run_type="full")
    runtime._overrides["sender"] = FailingSender(queue, failures=3)

    drain(worker, queue)

    assert runtime._overrides["sender"].failures == 0
    assert_clean_run(runtime, started.run_id, 2000)
    with runtime.pool.connection() as conn:
        duplicates = conn.execute(
            "select count(*) from worker_runs where run_id = %s and outcome = 'fetched'",
            (started.run_id,),
        ).fetchone()[0]
    assert duplicates == sum(row[6] for row in progress_rows(runtime, started.run_id))


def test_worker_crash_before_finish_closes_partition(
    runtime, queue, worker, monkeypatch
):
    started = start_run(runtime, run_type="full")
    real_finish = worker_module.finish_partition
    crashes = {"left": 4}

    def crashing_finish(runtime_, item):
        if crashes["left"] > 0:
            crashes["left"] -= 1
            raise ConnectionError("worker died before closing the partition (test)")
        return real_finish(runtime_, item)

    monkeypatch.setattr(worker_module, "finish_partition", crashing_finish)

    drain(worker, queue)

    assert crashes["left"] == 0
    assert_clean_run(runtime, started.run_id, 2000)


def test_worker_never_pages_past_count(runtime, queue, worker, simulator):
    started = start_run(runtime, run_type="full")
    simulator.service.reset_stats()

    drain(worker, queue)

    rows = progress_rows(runtime, started.run_id)
    pages_needed = sum(math.ceil(row[4] / PAGE_SIZE) for row in rows)
    requests = simulator.service.stats_snapshot()["requests"]["by_operation"]
    assert requests["diamonds_by_query"] == pages_needed
    with runtime.pool.connection() as conn:
        beyond = conn.execute(
            "select count(*) from worker_runs w join partition_progress p"
            " using (run_id, partition_id) where w.run_id = %s"
            " and w.page_offset >= p.expected_count",
            (started.run_id,),
        ).fetchone()[0]
    assert beyond == 0


def test_worker_limits_last_page_to_count(runtime, queue, worker, simulator):
    started = start_run(runtime, run_type="full")
    message = queue.receive()
    item = WorkItem.from_body(message.body)
    queue.abandon(message)
    # The simulator returns full pages past the end, so only the count stops paging.
    short = item.model_copy(update={"expected_count": 60})
    with runtime.pool.connection() as conn:
        conn.execute(
            "update partition_progress set expected_count = 60"
            " where run_id = %s and partition_id = %s",
            (started.run_id, item.partition_id),
        )
        conn.commit()

    worker(
        ServiceBusMessage(
            body=short.to_body(),
            message_id="short-0",
            delivery_count=1,
            application_properties={},
            user_properties={},
        )
    )
    worker(
        ServiceBusMessage(
            body=short.next_page(50).to_body(),
            message_id="short-50",
            delivery_count=1,
            application_properties={},
            user_properties={},
        )
    )

    with runtime.pool.connection() as conn:
        pages = conn.execute(
            "select page_offset, stones from worker_runs where run_id = %s"
            " and partition_id = %s order by id",
            (started.run_id, item.partition_id),
        ).fetchall()
    assert pages == [(0, 50), (50, 10)]


def test_worker_last_delivery_fails_partition(runtime, queue, worker, simulator):
    started = start_run(runtime, run_type="full")
    s = runtime.settings
    replace_nivoda(runtime)
    simulator.service.faults.configure(
        {"http_500": {"rate": 1.0, "operations": ["diamonds_by_query"]}}
    )
    item = WorkItem.from_body(queue.receive().body)
    single = LocalQueue(max_delivery_count=s.max_delivery_count)
    single.send([item])

    for delivery in range(1, s.max_delivery_count + 1):
        message = single.receive()
        assert message.delivery_count == delivery
        assert deliver(worker, single, message) is False
        status = next(
            row
            for row in progress_rows(runtime, started.run_id)
            if row[0] == item.partition_id
        )
        if delivery < s.max_delivery_count:
            assert status[1] == "pending"

    assert status[1] == "failed"
    assert f"gave up after {s.max_delivery_count} deliveries" in status[8]
    assert "HTTP 500" in status[8]
    assert [m.message_id for m in single.dead_letters] == [item.message_id]
    assert single.is_idle()
    with runtime.pool.connection() as conn:
        logged = conn.execute(
            "select count(*) from error_logs where run_id = %s and partition_id = %s",
            (started.run_id, item.partition_id),
        ).fetchone()[0]
    assert logged == 1


def test_worker_fatal_error_fails_partition(runtime, queue, worker):
    started = start_run(runtime, run_type="full")
    replace_nivoda(runtime, password="wrong-password")
    message = queue.receive()
    item = WorkItem.from_body(message.body)

    assert deliver(worker, queue, message) is True

    status = next(
        row
        for row in progress_rows(runtime, started.run_id)
        if row[0] == item.partition_id
    )
    assert status[1] == "failed"
    assert status[8].startswith("supplier rejected the request")
    assert queue.dead_letters == []


@pytest.mark.parametrize(
    "body", [b"not json", b'{"feed": "nivoda"}', b'{"feed": "nivoda", "run_id": 3}']
)
def test_worker_malformed_body_recorded(runtime, worker, body):
    message = ServiceBusMessage(
        body=body,
        message_id="bad-1",
        delivery_count=1,
        application_properties={},
        user_properties={},
    )

    assert worker(message) is None

    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "select source, message, details from error_logs"
        ).fetchall()
    assert len(rows) == 1
    source, text, details = rows[0]
    assert source == "worker"
    assert text.startswith("malformed work item")
    assert details["message_id"] == "bad-1"
    assert details["body"] == body.decode()


def test_worker_body_with_nul_recorded(runtime, worker):
    message = ServiceBusMessage(
        body=b"\x00\x00",
        message_id="bad-nul",
        delivery_count=1,
        application_properties={},
        user_properties={},
    )

    assert worker(message) is None

    with runtime.pool.connection() as conn:
        rows = conn.execute("select source, details from error_logs").fetchall()
    assert len(rows) == 1
    source, details = rows[0]
    assert source == "worker"
    assert details["body"] == "\ufffd\ufffd"


def test_worker_run_id_with_nul_recorded(runtime, worker):
    fields = {
        "feed": "nivoda", "run_id": "run\x00", "partition_id": 0,
        "price_min_cents": 0, "expected_count": 1, "offset": 0, "page_size": 50,
        "updated_from": "2000-01-01T00:00:00Z", "updated_to": "2020-01-01T00:00:00Z",
        "trace_id": "trace",
    }
    message = ServiceBusMessage(
        body=json.dumps(fields).encode(),
        message_id="bad-run-id",
        delivery_count=1,
        application_properties={},
        user_properties={},
    )

    assert worker(message) is None

    with runtime.pool.connection() as conn:
        rows = conn.execute("select source, message from error_logs").fetchall()
    assert len(rows) == 1
    assert rows[0][0] == "worker"
    assert rows[0][1].startswith("malformed work item")


def test_worker_consolidation_twice_same_result(runtime, queue, worker, function_index):
    started = start_run(runtime, run_type="full")
    drain(worker, queue)
    consolidate = function_index["gate_consolidate"].get_user_function()

    first = consolidate(started.run_id)
    with runtime.pool.connection() as conn:
        served = conn.execute(
            "select supplier_stone_id, offer_id, priced_price_cents,"
            " updated_at from diamonds order by 1"
        ).fetchall()
        conn.execute("update raw_diamonds_nivoda set status = 'pending'")
        conn.execute("insert into raw_diamonds_nivoda_pending"
                     " select id from raw_diamonds_nivoda")
        conn.commit()
    second = consolidate(started.run_id)
    third = consolidate(started.run_id)

    assert first["upserted"] == 2000
    assert first["remaining"] == 0
    assert second["claimed"] == 2000
    assert second["upserted"] == 0
    assert third["claimed"] == 0
    with runtime.pool.connection() as conn:
        again = conn.execute(
            "select supplier_stone_id, offer_id, priced_price_cents,"
            " updated_at from diamonds order by 1"
        ).fetchall()
    assert again == served


def truth_in_window(simulator, run_id: str, runtime) -> set[str]:
    with runtime.pool.connection() as conn:
        updated_from, updated_to = conn.execute(
            "select updated_from, updated_to from run_metadata where run_id = %s",
            (run_id,),
        ).fetchone()
    window = {
        "updated": {"from": updated_from.isoformat(), "to": updated_to.isoformat()}
    }
    return {stone["stone_id"] for stone in simulator.catalogue.truth(window)}


def seen_by_run(runtime, run_id: str) -> set[str]:
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "select supplier_stone_id from raw_diamonds_nivoda"
            " where last_seen_run_id = %s",
            (run_id,),
        ).fetchall()
    return {row[0] for row in rows}


def test_worker_repages_after_duplicate_page(runtime, queue, worker, simulator):
    started = start_run(runtime, run_type="full")
    # Single-threaded delivery makes the seeded draws repeatable.
    simulator.service.faults.configure(
        {"duplicate_across_pages": {"rate": 0.1}, "seed": 5}
    )

    drain(worker, queue)

    injected = simulator.service.stats_snapshot()["faults"]["duplicate_across_pages"]
    rows = progress_rows(runtime, started.run_id)
    assert injected >= 1
    assert [row[1] for row in rows] == ["done"] * len(rows)
    assert max(row[2] for row in rows) == 2
    assert not any(row[7] for row in rows)
    assert seen_by_run(runtime, started.run_id) == truth_in_window(
        simulator, started.run_id, runtime
    )


def test_worker_repages_after_mid_run_changes(runtime, queue, worker, simulator):
    started = start_run(runtime, run_type="full")
    deliveries = {"count": 0}

    def mutate_mid_run(message: QueuedMessage) -> bool:
        deliveries["count"] += 1
        if deliveries["count"] in (8, 16, 24):
            simulator.catalogue.mutate(
                {"price_changes": 3, "sold": 2, "withdrawn": 2, "new_stones": 2}
            )
        return False

    drain(worker, queue, lose_completion_of=mutate_mid_run)

    rows = progress_rows(runtime, started.run_id)
    assert [row[1] for row in rows] == ["done"] * len(rows)
    assert max(row[2] for row in rows) >= 2
    window = truth_in_window(simulator, started.run_id, runtime)
    assert len(window) < 2000
    assert window <= seen_by_run(runtime, started.run_id)


def _consolidate_and_finalize(runtime, run_id: str) -> dict:
    from shared import gate

    gate.prepare_consolidation(runtime, run_id)
    gate.consolidate_share(runtime, run_id)
    return gate.finalize_run(runtime, run_id, partial=False)


def _active_stones(runtime) -> set[str]:
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "select supplier_stone_id from diamonds where status = 'active'"
        ).fetchall()
    return {row[0] for row in rows}


def test_finalize_retires_only_after_complete_run(runtime, queue, worker, simulator):
    first = start_run(runtime, run_type="full")
    drain(worker, queue)
    assert _consolidate_and_finalize(runtime, first.run_id)["retired"] == 0
    withdrawn = set(simulator.catalogue.mutate({"withdrawn": 5}, seed=3)["withdrawn"])
    assert withdrawn <= _active_stones(runtime)

    # Every later page repeats a stone, so each pass drifts until the passes run out.
    simulator.service.faults.configure({"duplicate_across_pages": {"rate": 1.0}})
    drifted = start_run(runtime, run_type="full")
    drain(worker, queue)
    drifted_result = _consolidate_and_finalize(runtime, drifted.run_id)

    rows = progress_rows(runtime, drifted.run_id)
    assert any(row[7] for row in rows)
    assert drifted_result["retired"] == 0
    assert withdrawn <= _active_stones(runtime)

    simulator.service.faults.configure({})
    clean = start_run(runtime, run_type="full")
    drain(worker, queue)
    clean_result = _consolidate_and_finalize(runtime, clean.run_id)

    assert clean_result["retired"] == 5
    assert not withdrawn & _active_stones(runtime)


def test_finalize_keeps_stones_after_failed_partition(
    runtime, queue, worker, simulator
):
    first = start_run(runtime, run_type="full")
    drain(worker, queue)
    _consolidate_and_finalize(runtime, first.run_id)
    withdrawn = set(simulator.catalogue.mutate({"withdrawn": 3}, seed=4)["withdrawn"])

    second = start_run(runtime, run_type="full")
    message = queue.receive()
    replace_nivoda(runtime, password="wrong-password")
    deliver(worker, queue, message)
    runtime.nivoda.close()
    runtime._overrides.pop("nivoda")
    drain(worker, queue)
    result = _consolidate_and_finalize(runtime, second.run_id)

    assert [row[1] for row in progress_rows(runtime, second.run_id)].count(
        "failed"
    ) == 1
    assert result["retired"] == 0
    assert withdrawn <= _active_stones(runtime)


def _run_status(runtime, run_id: str) -> str:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select status from run_metadata where run_id = %s", (run_id,)
        ).fetchone()[0]


def test_gate_leaves_cancelled_run_cancelled(runtime, queue, worker, simulator):
    from shared import gate, run_control

    first = start_run(runtime, run_type="full")
    drain(worker, queue)
    _consolidate_and_finalize(runtime, first.run_id)
    watermark = runtime.watermarks.read(runtime.settings.feed)
    withdrawn = set(simulator.catalogue.mutate({"withdrawn": 3}, seed=5)["withdrawn"])
    second = start_run(runtime, run_type="full")
    drain(worker, queue)

    run_control.cancel(runtime, second.run_id)
    gate.prepare_consolidation(runtime, second.run_id)
    status_after_prepare = _run_status(runtime, second.run_id)
    gate.consolidate_share(runtime, second.run_id)
    result = gate.finalize_run(runtime, second.run_id, partial=False)

    assert status_after_prepare == "cancelled"
    assert _run_status(runtime, second.run_id) == "cancelled"
    assert result["status"] == "cancelled"
    assert result["retired"] == 0
    assert withdrawn <= _active_stones(runtime)
    assert runtime.watermarks.read(runtime.settings.feed) == watermark


def test_failed_gate_keeps_cancelled_status(runtime, queue, worker):
    from shared import gate, run_control

    started = start_run(runtime, run_type="full")
    drain(worker, queue)
    run_control.cancel(runtime, started.run_id)

    result = gate.fail_run(runtime, started.run_id, "consolidation_failed", "boom")

    with runtime.pool.connection() as conn:
        reason, finished_at = conn.execute(
            "select failure_reason, finished_at from run_metadata where run_id = %s",
            (started.run_id,),
        ).fetchone()
    assert result["status"] == "failed"
    assert _run_status(runtime, started.run_id) == "cancelled"
    assert reason == "boom"
    assert finished_at is not None


def test_cancel_waits_for_finalizing_gate(runtime, queue, worker):
    """A cancel that finds the run row locked reads the status the gate stores."""
    import threading

    from shared import run_control

    started = start_run(runtime, run_type="full")
    drain(worker, queue)
    outcome = {}

    def cancel():
        try:
            run_control.cancel(runtime, started.run_id)
            outcome["error"] = None
        except run_control.RunControlError as exc:
            outcome["error"] = exc

    with runtime.pool.connection() as conn:
        conn.execute("select 1 from run_metadata where run_id = %s for update",
                     (started.run_id,))
        thread = threading.Thread(target=cancel)
        thread.start()
        thread.join(0.5)
        conn.execute("update run_metadata set status = 'completed' where run_id = %s",
                     (started.run_id,))
    thread.join(10)

    assert outcome["error"] is not None
    assert outcome["error"].status == 409
    assert _run_status(runtime, started.run_id) == "completed"


def edit_served_items(monkeypatch, simulator, edits: dict) -> None:
    """Apply `edits[stone_id](item)` to each listed stone as the simulator serves it.

    The simulator encodes the edited item with json.dumps, so a NUL or a lone
    surrogate reaches the worker as a \\u escape, as a supplier would send it.
    """
    catalogue = simulator.catalogue
    build_items = catalogue.build_items

    def build_edited(positions):
        items = build_items(positions)
        for item in items:
            edit = edits.get(item["diamond"]["id"])
            if edit is not None:
                edit(item)
        return items

    monkeypatch.setattr(catalogue, "build_items", build_edited)


def test_worker_stores_page_with_unstorable_characters(
    runtime, queue, worker, simulator, monkeypatch, function_index
):
    first, second, third = (item["diamond"]["id"]
                            for item in simulator.catalogue.build_items([0, 1, 2]))

    def nul_in_value(item):
        item["diamond"]["certificate"]["girdle"] = "THIN\x00MEDIUM"

    def surrogate_in_value(item):
        item["diamond"]["supplier"]["name"] = "Gems \ud800 Ltd"

    def both_in_ids(item):
        item["diamond"]["id"] += "\x00"
        item["id"] += "\udfff"

    edit_served_items(monkeypatch, simulator, {
        first: nul_in_value, second: surrogate_in_value, third: both_in_ids,
    })
    started = start_run(runtime, run_type="full")

    drain(worker, queue)

    assert_clean_run(runtime, started.run_id, 2000)
    assert queue.dead_letters == []
    with runtime.pool.connection() as conn:
        payloads = dict(conn.execute(
            "select supplier_stone_id, payload from raw_diamonds_nivoda"
            " where supplier_stone_id = any(%s)", ([first, second, third + "\ufffd"],),
        ).fetchall())
    assert payloads[first]["diamond"]["certificate"]["girdle"] == "THIN\ufffdMEDIUM"
    assert payloads[second]["diamond"]["supplier"]["name"] == "Gems \ufffd Ltd"
    assert payloads[third + "\ufffd"]["id"].endswith("\ufffd")

    consolidated = function_index["gate_consolidate"].get_user_function()(
        started.run_id)

    assert consolidated["upserted"] == 2000
    assert consolidated["failed"] == 0
    with runtime.pool.connection() as conn:
        supplier_name = conn.execute(
            "select supplier_name from diamonds where supplier_stone_id = %s", (second,)
        ).fetchone()[0]
        offer_id = conn.execute(
            "select offer_id from diamonds where supplier_stone_id = %s",
            (third + "\ufffd",),
        ).fetchone()[0]
    assert supplier_name == "Gems \ufffd Ltd"
    assert offer_id.endswith("\ufffd")


def test_split_keyed_items_replaces_in_keys():
    item = {"id": "offer", "diamond": {"id": "stone", "note\x00": "x", "\udfff": "y"}}

    keyed, skipped = raw_store.split_keyed_items([item])

    assert skipped == []
    assert keyed[0].payload["diamond"]["note\ufffd"] == "x"
    assert keyed[0].payload["diamond"]["\ufffd"] == "y"
    assert keyed[0].payload_hash == raw_store.hash_payload(keyed[0].payload)


def test_split_keyed_items_keeps_unicode_intact():
    # A character beyond U+FFFF is written as a surrogate pair by json.dumps.
    item = {"id": "offer", "diamond": {"id": "stone", "note": "\U0001f48e \\u0000"}}

    keyed, _ = raw_store.split_keyed_items([item])

    assert keyed[0].payload == item
    assert keyed[0].payload_hash == raw_store.hash_payload(item)


def test_worker_repeated_page_with_nul_queues_nothing(
    runtime, queue, worker, simulator, monkeypatch
):
    stone_id = simulator.catalogue.build_items([0])[0]["diamond"]["id"]

    def nul_in_value(item):
        item["diamond"]["image"] = "https://media.example.test/\x00.jpg"

    edit_served_items(monkeypatch, simulator, {stone_id: nul_in_value})
    first = start_run(runtime, run_type="full")
    drain(worker, queue)
    _consolidate_and_finalize(runtime, first.run_id)

    again = start_run(runtime, run_type="full")
    drain(worker, queue)

    payload_hash, status, queued, last_seen_run_id = raw_rows(runtime)[stone_id]
    assert last_seen_run_id == again.run_id
    assert status == "done"
    assert queued is False, "an unchanged payload is not queued again"


def test_worker_skips_stone_id_too_long_to_index(
    runtime, queue, worker, simulator, monkeypatch
):
    stone_id = simulator.catalogue.build_items([0])[0]["diamond"]["id"]
    # Hex digests do not compress, so the index entry keeps all 3,000 bytes.
    long_id = "".join(hashlib.sha256(bytes([index])).hexdigest()
                      for index in range(47))[:3000]

    def lengthen_id(item):
        item["diamond"]["id"] = long_id

    edit_served_items(monkeypatch, simulator, {stone_id: lengthen_id})
    started = start_run(runtime, run_type="full")

    drain(worker, queue)

    rows = progress_rows(runtime, started.run_id)
    assert [row[1] for row in rows] == ["done"] * len(rows)
    assert queue.dead_letters == []
    stored = raw_rows(runtime)
    assert len(stored) == 1999
    assert long_id not in stored
    with runtime.pool.connection() as conn:
        logged = conn.execute(
            "select message from error_logs where source = 'worker'"
        ).fetchall()
    assert logged
    assert {message for (message,) in logged} == {
        "item skipped: diamond.id is 3000 bytes long, expected at most 1000"
    }


def test_worker_skips_null_item(runtime, queue, worker, simulator, monkeypatch):
    catalogue = simulator.catalogue
    build_items = catalogue.build_items
    missing = build_items([0])[0]["diamond"]["id"]

    def build_with_null(positions):
        return [None if item["diamond"]["id"] == missing else item
                for item in build_items(positions)]

    monkeypatch.setattr(catalogue, "build_items", build_with_null)
    started = start_run(runtime, run_type="full")

    drain(worker, queue)

    assert queue.dead_letters == []
    rows = progress_rows(runtime, started.run_id)
    assert "failed" not in {row[1] for row in rows}
    stored = raw_rows(runtime)
    assert len(stored) == 1999
    assert missing not in stored
    with runtime.pool.connection() as conn:
        logged = conn.execute(
            "select message from error_logs where source = 'worker'"
        ).fetchall()
    assert ("item skipped: item is null, expected an object",) in logged


# More digits than json.loads converts to an int by default (4,300).
LONG_DIGITS = "1234567890" * 500
# PostgreSQL numerics, and so jsonb numbers, keep at most 131,072 digits.
JSONB_MAX_DIGITS = 131_072


def serve_number_literals(monkeypatch, literals: dict[str, str]) -> None:
    """Make the simulator send each marker string of `literals` as its number literal.

    json.dumps writes neither an int beyond Python's digit limit nor a number
    beyond the float range, but a supplier may send both.
    """
    dumps = json.dumps

    def dumps_with_literals(value, **options) -> str:
        text = dumps(value, **options)
        for marker, literal in literals.items():
            text = text.replace(dumps(marker), literal)
        return text

    codec = SimpleNamespace(dumps=dumps_with_literals, loads=json.loads,
                            JSONDecodeError=json.JSONDecodeError)
    monkeypatch.setattr(simulator_server, "json", codec)


def set_field(name: str, value):
    def edit(item):
        item[name] = value
    return edit


def test_worker_stores_items_with_oversized_integers(
    runtime, queue, worker, simulator, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    priced, ignored = (item["diamond"]["id"]
                       for item in simulator.catalogue.build_items([0, 1]))
    edit_served_items(monkeypatch, simulator, {
        priced: set_field("price", "<long price>"),
        ignored: set_field("markup_price", "<long markup price>"),
    })
    serve_number_literals(monkeypatch, {"<long price>": LONG_DIGITS,
                                        "<long markup price>": LONG_DIGITS})
    started = start_run(runtime, run_type="full")

    drain(worker, queue)

    assert_clean_run(runtime, started.run_id, 2000)
    assert queue.dead_letters == []
    with runtime.pool.connection() as conn:
        # As text, because psycopg reads jsonb with json.loads.
        stored = {row[0]: row[1:] for row in conn.execute(
            "select supplier_stone_id, payload->>'price',"
            " jsonb_typeof(payload->'price'), payload->>'markup_price',"
            " jsonb_typeof(payload->'markup_price')"
            " from raw_diamonds_nivoda where supplier_stone_id = any(%s)",
            ([priced, ignored],),
        ).fetchall()}
    assert stored[priced][:2] == (LONG_DIGITS, "number")
    assert stored[ignored][2:] == (LONG_DIGITS, "number")

    _consolidate_and_finalize(runtime, started.run_id)

    with runtime.pool.connection() as conn:
        statuses = dict(conn.execute(
            "select status, count(*) from raw_diamonds_nivoda group by status"
        ).fetchall())
        reasons = dict(conn.execute(
            "select supplier_stone_id, failure_reason from raw_diamonds_nivoda"
            " where status = 'failed'"
        ).fetchall())
        logged = conn.execute(
            "select message from error_logs where source = 'consolidation'"
        ).fetchall()
        served = {row[0] for row in conn.execute(
            "select supplier_stone_id from diamonds where status = 'active'"
        ).fetchall()}
    reason = ("price is an integer of 5000 digits, beyond the 4300 that Python"
              " converts to an int, expected an integer of cents")
    assert statuses == {"done": 1999, "failed": 1}
    assert reasons == {priced: reason}
    assert logged == [(f"payload not mapped: {reason}",)]
    assert ignored in served
    assert len(served) == 1999
    assert LONG_DIGITS[:100] not in caplog.text

    # The same payloads hash the same, so a second run queues neither again.
    again = start_run(runtime, run_type="full")
    drain(worker, queue)

    rows = raw_rows(runtime)
    assert rows[priced][1:] == ("failed", False, again.run_id)
    assert rows[ignored][1:] == ("done", False, again.run_id)


def test_worker_skips_numbers_jsonb_cannot_store(
    runtime, queue, worker, simulator, monkeypatch
):
    infinite, too_long, longest = (
        item["diamond"]["id"] for item in simulator.catalogue.build_items([0, 1, 2])
    )
    edit_served_items(monkeypatch, simulator, {
        infinite: set_field("discount", "<beyond float range>"),
        too_long: set_field("markup_price", "<too long for jsonb>"),
        longest: set_field("markup_price", "<longest for jsonb>"),
    })
    serve_number_literals(monkeypatch, {
        "<beyond float range>": "1e400",
        "<too long for jsonb>": "9" * (JSONB_MAX_DIGITS + 1),
        "<longest for jsonb>": "9" * JSONB_MAX_DIGITS,
    })
    started = start_run(runtime, run_type="full")

    drain(worker, queue)

    assert queue.dead_letters == []
    rows = progress_rows(runtime, started.run_id)
    assert "failed" not in {row[1] for row in rows}
    stored = raw_rows(runtime)
    assert len(stored) == 1998
    assert infinite not in stored
    assert too_long not in stored
    assert longest in stored
    with runtime.pool.connection() as conn:
        logged = {message for (message,) in conn.execute(
            "select message from error_logs where source = 'worker'"
        ).fetchall()}
    assert logged == {
        "item skipped: discount is inf, a number that jsonb cannot store",
        "item skipped: markup_price is an integer of 131073 digits, expected at"
        " most 131072, the most that jsonb stores",
    }


def test_split_keyed_items_hashes_oversized_integer_as_written():
    item = {"id": "offer", "price": OversizedInteger(LONG_DIGITS),
            "diamond": {"id": "stone"}}

    keyed, skipped = raw_store.split_keyed_items([item])

    assert skipped == []
    text = ('{"diamond":{"id":"stone"},"id":"offer","price":' + LONG_DIGITS + "}")
    assert keyed[0].payload_hash == hashlib.sha256(text.encode()).hexdigest()
