"""LocalQueue: the Service Bus semantics the worker and the local host rely on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from shared.local_queue import LocalQueue, LockLostError
from shared.work_item import WorkItem


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_queue(clock, **options) -> LocalQueue:
    values = {
        "lock_seconds": 30,
        "max_delivery_count": 3,
        "duplicate_window_seconds": 600,
        "clock": clock,
    }
    values.update(options)
    return LocalQueue(**values)


def work_item(offset: int = 0) -> WorkItem:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return WorkItem(
        feed="nivoda",
        run_id="run-1",
        partition_id=0,
        price_min_cents=0,
        expected_count=100,
        offset=offset,
        page_size=50,
        updated_from=moment,
        updated_to=moment,
        trace_id="t",
    )


def test_queue_receive_locks_message(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")

    message = queue.receive()

    assert message.message_id == "m-1"
    assert message.delivery_count == 1
    assert queue.receive() is None  # locked, so invisible to other receivers
    assert queue.active_count() == 1


def test_queue_complete_removes_message(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")

    queue.complete(queue.receive())

    assert queue.is_idle()


def test_queue_abandon_redelivers_with_count(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")

    queue.abandon(queue.receive())
    again = queue.receive()

    assert again.message_id == "m-1"
    assert again.delivery_count == 2
    assert again.body == b"body"


def test_queue_dead_letters_after_max_deliveries(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")

    for _ in range(3):
        queue.abandon(queue.receive())

    assert queue.receive() is None
    assert queue.is_idle()
    assert [m.message_id for m in queue.dead_letters] == ["m-1"]
    assert queue.dead_letters[0].delivery_count == 3
    assert queue.dead_letters[0].dead_letter_reason == "MaxDeliveryCountExceeded"


def test_queue_lock_expiry_redelivers(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")
    first = queue.receive()

    clock.now += 31
    second = queue.receive()

    assert second.message_id == "m-1"
    assert second.delivery_count == 2
    assert first.delivery_count == 1  # the first receiver's view does not change


def test_queue_stale_lock_cannot_settle(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")
    first = queue.receive()
    clock.now += 31
    second = queue.receive()

    with pytest.raises(LockLostError, match="m-1"):
        queue.complete(first)
    queue.abandon(first)  # a stale abandon changes nothing either

    assert queue.receive() is None  # the second receiver still holds the lock
    queue.complete(second)
    assert queue.is_idle()


def test_queue_second_complete_raises(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")
    message = queue.receive()
    queue.complete(message)

    with pytest.raises(LockLostError):
        queue.complete(message)


def test_queue_renew_lock_keeps_message(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")
    message = queue.receive()

    clock.now += 20
    queue.renew_lock(message)
    clock.now += 20

    assert queue.receive() is None
    queue.complete(message)
    assert queue.is_idle()


def test_queue_renew_expired_lock_raises(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"body")
    message = queue.receive()
    clock.now += 31
    queue.receive()

    with pytest.raises(LockLostError):
        queue.renew_lock(message)


def test_queue_duplicate_id_dropped_in_window(clock):
    queue = make_queue(clock)

    assert queue.send_raw("m-1", b"first") is True
    assert queue.send_raw("m-1", b"second") is False
    queue.complete(queue.receive())
    assert queue.send_raw("m-1", b"third") is False  # completed, still in the window

    assert queue.duplicates_dropped == 2
    assert queue.is_idle()


def test_queue_duplicate_id_accepted_after_window(clock):
    queue = make_queue(clock)
    queue.send_raw("m-1", b"first")
    queue.complete(queue.receive())

    clock.now += 601

    assert queue.send_raw("m-1", b"again") is True
    assert queue.receive().body == b"again"


def test_queue_send_work_items_uses_message_id(clock):
    queue = make_queue(clock)
    items = [work_item(offset) for offset in range(0, 5000, 50)]

    queue.send(items)
    queue.send(items)

    received = []
    while (message := queue.receive()) is not None:
        received.append(message.message_id)
    assert received == [item.message_id for item in items]
    assert queue.duplicates_dropped == len(items)


def test_queue_scheduled_message_waits(clock):
    queue = make_queue(clock)
    queue.send_raw("later", b"x", delay_seconds=10)
    queue.send_raw("now", b"y")

    assert queue.receive().message_id == "now"
    assert queue.receive() is None
    clock.now += 10
    assert queue.receive().message_id == "later"


def test_queue_receive_waits_for_send():
    queue = LocalQueue(lock_seconds=30)
    sender = threading.Timer(0.1, queue.send_raw, args=("m-1", b"x"))
    sender.start()

    message = queue.receive(timeout=5)

    sender.join()
    assert message.message_id == "m-1"


def test_queue_concurrent_receivers_no_double_lock():
    queue = LocalQueue(lock_seconds=30)
    for index in range(200):
        queue.send_raw(f"m-{index}", b"x")
    received: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while (message := queue.receive(timeout=0.05)) is not None:
            queue.complete(message)
            with lock:
                received.append(message.message_id)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(received) == sorted(f"m-{index}" for index in range(200))
    assert queue.is_idle()


def test_local_host_survives_lost_lock(runtime):
    import time

    from cli.local_host import LocalHost

    def slow_first_delivery(message) -> None:
        if message.delivery_count == 1:
            time.sleep(0.4)  # longer than the lock, so the completion is refused

    host = LocalHost(
        runtime, worker_threads=1, lock_seconds=0.2, on_message=slow_first_delivery
    ).start()
    try:
        host.queue.send_raw("bad-1", b"not json")
        deadline = time.monotonic() + 10
        while not host.queue.is_idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = all(thread.is_alive() for thread in host._threads)
    finally:
        host.stop()

    assert host.queue.is_idle()
    assert alive
    with runtime.pool.connection() as conn:
        recorded = conn.execute("select count(*) from error_logs").fetchone()[0]
    assert recorded == 2  # the first delivery and its redelivery
