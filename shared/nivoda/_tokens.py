"""Login tokens cached per process and shared by every thread and client."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

# Renew this long before the token's expiry, so that a request sent just
# before it never carries a token that expires in flight.
DEFAULT_REFRESH_MARGIN_SECONDS = 600.0


class TokenStore:
    """One cached token and its expiry, renewed under a lock.

    Threads that find no valid token wait on the lock while one of them logs
    in, so a burst of requests causes a single login.
    """

    def __init__(
        self,
        ttl_seconds: float,
        *,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"token_ttl_seconds must be > 0, got {ttl_seconds}")
        self._lock = threading.Lock()
        self._clock = clock
        self._ttl_seconds = float(ttl_seconds)
        # A short TTL (as in tests) would be eaten by a fixed 10-minute margin.
        self._margin_seconds = min(refresh_margin_seconds, ttl_seconds / 2)
        self._token: str | None = None
        self._renew_at = 0.0

    def get(self, login: Callable[[], str]) -> str:
        """Return the cached token, logging in first if it is due for renewal."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._store(login())
            return self._token

    def renew(self, rejected_token: str, login: Callable[[], str]) -> str:
        """Log in again unless another thread already replaced `rejected_token`."""
        with self._lock:
            if self._token is None or self._token == rejected_token:
                self._token = None
                self._store(login())
            return self._token

    def clear(self) -> None:
        """Forget the token, so that the next request logs in."""
        with self._lock:
            self._token = None

    def _store(self, token: str) -> None:
        self._token = token
        self._renew_at = self._clock() + self._ttl_seconds - self._margin_seconds


_stores: dict[tuple[str, str, str], TokenStore] = {}
_stores_lock = threading.Lock()


def get_shared_token_store(
    endpoint: str, username: str, password: str, ttl_seconds: float
) -> TokenStore:
    """Return the process-wide token store of one login on one endpoint.

    The key contains a SHA-256 digest of the password, not the password, so a
    client with other credentials never reuses the token.
    """
    digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
    key = (endpoint, username, digest)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = TokenStore(ttl_seconds)
            _stores[key] = store
        return store
