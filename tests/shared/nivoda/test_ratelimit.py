"""Token bucket pacing, with an injected clock and sleep."""

from __future__ import annotations

import threading

import pytest

from shared.nivoda.ratelimit import TokenBucket, get_shared_bucket


class FakeClock:
    """A clock that only moves when sleep() is called."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_up_to_capacity_without_waiting():
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)

    waits = [bucket.acquire() for _ in range(5)]

    assert waits == [0.0] * 5
    assert clock.slept == []


def test_paces_requests_past_capacity():
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)

    for _ in range(15):
        bucket.acquire()

    # 5 from the burst, then 10 more at 5 per second.
    assert clock.now - 100.0 == pytest.approx(2.0)
    assert len(clock.slept) == 10
    assert clock.slept[0] == pytest.approx(0.2)


def test_refills_while_idle():
    clock = FakeClock()
    bucket = TokenBucket(2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.acquire()

    clock.now += 10.0

    assert bucket.acquire() == 0.0
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)


def test_reservations_queue_threads_in_order():
    clock = FakeClock()
    bucket = TokenBucket(10, capacity=1, clock=clock, sleep=clock.sleep)
    delays: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        delay = bucket.reserve()
        with lock:
            delays.append(delay)

    threads = [threading.Thread(target=reserve) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(delays) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_rejects_non_positive_rate():
    with pytest.raises(ValueError, match="rate_per_second"):
        TokenBucket(0)


def test_shared_bucket_per_endpoint():
    first = get_shared_bucket("http://127.0.0.1:1/graphql-ratelimit-a", 20)
    again = get_shared_bucket("http://127.0.0.1:1/graphql-ratelimit-a", 20)
    other = get_shared_bucket("http://127.0.0.1:1/graphql-ratelimit-b", 20)

    assert first is again
    assert first is not other


def test_shared_bucket_keeps_lowest_rate():
    endpoint = "http://127.0.0.1:1/graphql-ratelimit-c"
    get_shared_bucket(endpoint, 25)
    bucket = get_shared_bucket(endpoint, 5)
    get_shared_bucket(endpoint, 50)

    assert bucket.rate_per_second == 5
