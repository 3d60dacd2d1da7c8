"""Application settings, read once from the environment.

Environment names match `local.settings.json.example`. In Azure every app
setting is an environment variable of the worker process.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from decimal import Decimal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(RuntimeError):
    """Raised at start-up when settings are missing or invalid."""


class Settings(BaseSettings):
    """Every setting the app reads, with defaults for a local run."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True
    )

    feed: str = Field("nivoda", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    database_url: str | None = None
    database_pool_max_size: int = Field(8, ge=1, le=100)

    nivoda_endpoint: str = "http://127.0.0.1:8765/graphql"
    nivoda_username: str = "demo"
    nivoda_password: str = Field("demo", repr=False)
    nivoda_requests_per_second: float = Field(25.0, gt=0)
    nivoda_timeout_seconds: float = Field(30.0, gt=0)
    nivoda_max_retries: int = Field(3, ge=0, le=10)

    servicebus_namespace: str | None = None
    servicebus_connection_string: str | None = Field(None, repr=False)
    work_items_queue: str = "work-items"
    max_delivery_count: int = Field(10, ge=1, le=2000)

    watermark_account_url: str | None = None
    watermark_connection_string: str | None = Field(None, repr=False)
    watermark_container: str = "watermarks"
    watermark_dir: str = ".local/watermarks"

    sync_schedule: str = "0 0 2 * * *"
    incremental_overlap_minutes: int = Field(15, ge=0)
    page_size: int = Field(50, ge=1, le=50)
    max_partitions_full: int = Field(1000, ge=1)
    max_partitions_incremental: int = Field(10, ge=1)
    partition_target_stones: int = Field(1000, ge=50)
    max_repage_passes: int = Field(2, ge=1, le=10)

    gate_poll_seconds: float = Field(30.0, gt=0)
    gate_partial_delay_seconds: float = Field(300.0, ge=0)
    gate_success_threshold: Decimal = Field(Decimal("0.70"), gt=0, le=1)
    gate_timeout_hours: float = Field(6.0, gt=0)
    consolidation_batch_size: int = Field(5000, ge=1)
    consolidation_parallelism: int = Field(2, ge=1, le=32)
    stuck_claim_minutes: int = Field(30, ge=1)
    # A consolidation with at least this many pending stones, and more of them
    # than `diamonds` holds for the feed, builds the search indexes afterwards.
    bulk_load_min_rows: int = Field(100_000, ge=1)

    resend_api_key: str | None = Field(None, repr=False)
    resend_api_url: str = "https://api.resend.com"
    alert_email_to: str | None = None
    alert_email_from: str = "alerts@diamond-opus.example"
    alerts_per_hour: int = Field(6, ge=1)

    hmac_secrets: dict[str, list[str]] = Field(default_factory=dict, repr=False)
    hmac_tolerance_seconds: int = Field(300, ge=1)
    rate_limit_per_minute: int = Field(600, ge=1)

    applicationinsights_connection_string: str | None = Field(None, repr=False)

    @field_validator("hmac_secrets", mode="before")
    @classmethod
    def _secrets_as_lists(cls, value: object) -> object:
        # Accept {"client": "secret"} as well as {"client": ["new", "old"]}.
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @property
    def raw_table(self) -> str:
        return f"raw_diamonds_{self.feed}"

    @property
    def uses_service_bus(self) -> bool:
        return bool(self.servicebus_namespace or self.servicebus_connection_string)

    @property
    def uses_blob_watermark(self) -> bool:
        return bool(self.watermark_account_url or self.watermark_connection_string)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, raising one SettingsError that names each bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


_HOST_REQUIRED = (
    ("DATABASE_URL",),
    ("NIVODA_ENDPOINT",),
    ("NIVODA_USERNAME",),
    ("NIVODA_PASSWORD",),
    ("SERVICEBUS_NAMESPACE", "SERVICEBUS_CONNECTION_STRING"),
    ("WATERMARK_ACCOUNT_URL", "WATERMARK_CONNECTION_STRING"),
)


def check_host_settings(environ: Mapping[str, str] = os.environ) -> None:
    """Under the Functions host, raise one SettingsError naming every gap.

    Locally the defaults point at the simulator and the embedded services. In
    Azure each of these must be set, because an app that starts without them
    would only fail later, on its first message.
    """
    if not environ.get("FUNCTIONS_WORKER_RUNTIME"):
        return
    load_settings()
    missing = [
        " or ".join(names)
        for names in _HOST_REQUIRED
        if not any(environ.get(name) for name in names)
    ]
    if missing:
        raise SettingsError("missing settings: " + "; ".join(missing))


@functools.cache
def get_settings() -> Settings:
    """Return the process-wide settings object."""
    return load_settings()
