"""The process-wide runtime: settings and the clients built from them.

Trigger functions fetch it with `get_runtime()`. Each client is built on first
use, so a cold start pays only for what its first invocation needs. The local
runner and tests install their own runtime with `set_runtime()`.
"""

from __future__ import annotations

import functools
import logging
import threading

from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings, **overrides: object) -> None:
        self.settings = settings
        self._overrides = overrides
        self._lock = threading.RLock()

    def _build(self, name: str, factory):
        with self._lock:
            if name in self._overrides:
                return self._overrides[name]
            value = factory()
            self._overrides[name] = value
            return value

    @property
    def pool(self):
        return self._build("pool", self._open_pool)

    def _open_pool(self):
        from shared import db

        if not self.settings.database_url:
            raise RuntimeError("DATABASE_URL is not set; set it to a PostgreSQL URL")
        db.migrate_once(self.settings.database_url)
        return db.open_pool(
            self.settings.database_url, max_size=self.settings.database_pool_max_size
        )

    @property
    def nivoda(self):
        return self._build("nivoda", self._make_nivoda)

    def _make_nivoda(self):
        from shared.nivoda import NivodaClient

        s = self.settings
        return NivodaClient(
            s.nivoda_endpoint,
            s.nivoda_username,
            s.nivoda_password,
            timeout_seconds=s.nivoda_timeout_seconds,
            requests_per_second=s.nivoda_requests_per_second,
            max_retries=s.nivoda_max_retries,
        )

    @property
    def sender(self):
        return self._build("sender", self._make_sender)

    def _make_sender(self):
        from shared.queue import ServiceBusSender

        if not self.settings.uses_service_bus:
            raise RuntimeError(
                "no queue configured: set SERVICEBUS_NAMESPACE or "
                "SERVICEBUS_CONNECTION_STRING, or run through the local runner"
            )
        return ServiceBusSender.from_settings(self.settings)

    @property
    def watermarks(self):
        return self._build("watermarks", self._make_watermarks)

    def _make_watermarks(self):
        from shared.watermark import BlobWatermarkStore, FileWatermarkStore

        if self.settings.uses_blob_watermark:
            return BlobWatermarkStore.from_settings(self.settings)
        return FileWatermarkStore(self.settings.watermark_dir)

    @property
    def alerts(self):
        return self._build("alerts", self._make_alerts)

    def _make_alerts(self):
        from shared.alerts import Alerter

        return Alerter.from_settings(self.settings)

    def close(self) -> None:
        """Close the clients this runtime built."""
        for name in ("nivoda", "pool"):
            client = self._overrides.get(name)
            if client is not None:
                client.close()


_installed: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    """Install the runtime used by every trigger function of this process."""
    global _installed
    _installed = runtime
    _default_runtime.cache_clear()


def get_runtime() -> Runtime:
    return _installed if _installed is not None else _default_runtime()


@functools.cache
def _default_runtime() -> Runtime:
    from shared.telemetry import configure_telemetry

    settings = get_settings()
    configure_telemetry(settings)
    return Runtime(settings)
