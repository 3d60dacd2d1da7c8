"""An in-process queue with the Service Bus semantics the worker relies on.

Peek-lock with a lock duration, redelivery after abandon or lock expiry,
a delivery count, a maximum delivery count that moves the message to a dead
letter list, duplicate detection by message id within a window, and scheduled
messages. It lets the pipeline run on one machine with the code that runs
against Service Bus in Azure.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from shared.work_item import WorkItem

log = logging.getLogger(__name__)


@dataclass
class QueuedMessage:
    message_id: str
    body: bytes
    enqueued_at: float
    available_at: float
    delivery_count: int = 0
    lock_token: str | None = None
    locked_until: float = 0.0
    dead_letter_reason: str | None = None
    application_properties: dict = field(default_factory=dict)


class LocalQueue:
    """Thread-safe peek-lock queue; `clock` is injectable for tests."""

    def __init__(
        self,
        *,
        lock_seconds: float = 60.0,
        max_delivery_count: int = 10,
        duplicate_window_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock_seconds = lock_seconds
        self.max_delivery_count = max_delivery_count
        self.duplicate_window_seconds = duplicate_window_seconds
        self._clock = clock
        self._ready: list[tuple[float, int, QueuedMessage]] = []
        self._locked: dict[str, QueuedMessage] = {}
        self._seen: dict[str, float] = {}
        self._order = itertools.count()
        self._cond = threading.Condition()
        self.dead_letters: list[QueuedMessage] = []
        self.duplicates_dropped = 0

    # Sending

    def send(self, items: list[WorkItem], *, delay_seconds: float = 0) -> None:
        for item in items:
            self.send_raw(item.message_id, item.to_body(), delay_seconds=delay_seconds)

    def send_raw(self, message_id: str, body: bytes, *, delay_seconds: float = 0) -> bool:
        """Enqueue one message; return False when duplicate detection drops it."""
        now = self._clock()
        with self._cond:
            seen_at = self._seen.get(message_id)
            if seen_at is not None and now - seen_at < self.duplicate_window_seconds:
                self.duplicates_dropped += 1
                return False
            self._seen[message_id] = now
            message = QueuedMessage(message_id, body, now, now + delay_seconds)
            self._push(message)
            self._cond.notify()
        return True

    def _push(self, message: QueuedMessage) -> None:
        heapq.heappush(self._ready, (message.available_at, next(self._order), message))

    # Receiving and settling

    def receive(self, timeout: float = 0.0) -> QueuedMessage | None:
        """Lock and return the next available message, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._expire_locks()
                message = self._pop_available()
                if message is not None:
                    return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.05))

    def _pop_available(self) -> QueuedMessage | None:
        if not self._ready or self._ready[0][0] > self._clock():
            return None
        _, _, message = heapq.heappop(self._ready)
        message.delivery_count += 1
        message.lock_token = uuid.uuid4().hex
        message.locked_until = self._clock() + self.lock_seconds
        self._locked[message.lock_token] = message
        # The receiver gets its own copy, so a later delivery of the same message
        # does not change the lock token that this receiver settles with.
        return replace(message)

    def _expire_locks(self) -> None:
        now = self._clock()
        expired = [m for m in self._locked.values() if m.locked_until <= now]
        for message in expired:
            log.warning(
                "lock expired, message_id=%s delivery_count=%d",
                message.message_id,
                message.delivery_count,
            )
            self._release(message.lock_token, "MaxDeliveryCountExceeded")

    def _held_lock(self, message: QueuedMessage) -> QueuedMessage:
        """Return the message behind a receiver's lock, or raise LockLostError."""
        held = self._locked.get(message.lock_token)
        if held is None:
            raise LockLostError(message.message_id)
        if held.locked_until <= self._clock():
            self._release(held.lock_token, "MaxDeliveryCountExceeded")
            raise LockLostError(message.message_id)
        return held

    def complete(self, message: QueuedMessage) -> None:
        """Settle a delivery; raise LockLostError if its lock expired or was settled."""
        with self._cond:
            held = self._held_lock(message)
            del self._locked[held.lock_token]

    def renew_lock(self, message: QueuedMessage) -> float:
        """Extend a delivery's lock by `lock_seconds`; return the new expiry time."""
        with self._cond:
            held = self._held_lock(message)
            held.locked_until = self._clock() + self.lock_seconds
            message.locked_until = held.locked_until
            return held.locked_until

    def abandon(self, message: QueuedMessage) -> None:
        """Give a delivery back for redelivery; a lost lock makes this do nothing."""
        with self._cond:
            self._release(message.lock_token, "MaxDeliveryCountExceeded")
            self._cond.notify()

    def _release(self, lock_token: str | None, reason: str) -> None:
        message = self._locked.pop(lock_token, None)
        if message is None:
            return
        message.lock_token = None
        if message.delivery_count >= self.max_delivery_count:
            message.dead_letter_reason = reason
            self.dead_letters.append(message)
            log.error(
                "message dead-lettered, message_id=%s delivery_count=%d",
                message.message_id,
                message.delivery_count,
            )
            return
        message.available_at = self._clock()
        self._push(message)

    # Inspection

    def active_count(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._locked)

    def is_idle(self) -> bool:
        return self.active_count() == 0


class LockLostError(RuntimeError):
    """Raised when settling a message whose lock expired or was already settled."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"lock lost for message {message_id}; it will be redelivered")
