"""Per-client rate limiting in fixed one-minute windows stored in PostgreSQL.

The counts live in the database, not in process memory, because the Function
App scales out to several instances and each must see the same count. The
cost is one upsert per request. A fixed window lets a client send up to
twice the limit across a window boundary, which is accepted for its
simplicity.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import psycopg

log = logging.getLogger(__name__)

_prune_lock = threading.Lock()
_last_prune = 0.0
_PRUNE_INTERVAL_SECONDS = 60.0


class RateLimitExceeded(Exception):
    def __init__(self, client_key: str, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"rate limit of {limit} requests per minute exceeded; retry after"
            f" {retry_after_seconds} s"
        )
        self.client_key = client_key
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


def count_request(conn: psycopg.Connection, client_key: str, limit: int) -> int:
    """Count one request of `client_key`; raise RateLimitExceeded over `limit`."""
    _prune_windows(conn)
    count, seconds_left = conn.execute(
        "insert into api_rate_windows as w (client_key, window_start, request_count)"
        " values (%s, date_trunc('minute', now()), 1)"
        " on conflict (client_key, window_start)"
        " do update set request_count = w.request_count + 1"
        " returning w.request_count,"
        " extract(epoch from w.window_start + interval '1 minute' - now())",
        (client_key, ),
    ).fetchone()
    if count > limit:
        retry_after = max(1, math.ceil(float(seconds_left)))
        log.warning(
            "rate limit exceeded, client=%s count=%s limit=%s", client_key, count, limit
        )
        raise RateLimitExceeded(client_key, limit, retry_after)
    return count


def _prune_windows(conn: psycopg.Connection) -> None:
    global _last_prune
    with _prune_lock:
        if time.monotonic() - _last_prune < _PRUNE_INTERVAL_SECONDS:
            return
        _last_prune = time.monotonic()
    conn.execute(
        "delete from api_rate_windows where window_start < now() - interval '5 minutes'"
    )
