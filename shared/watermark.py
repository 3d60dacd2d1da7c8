"""The watermark: the `updated.to` of the last run that consolidated successfully.

Stored as `watermarks/<feed>.json`. Every write is conditional on the ETag that
was read, so two runs cannot both advance it: the loser gets
WatermarkConflictError and reports it instead of overwriting.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watermark:
    updated_to: datetime
    run_id: str
    etag: str | None = None

    def to_json(self) -> bytes:
        document = {"updated_to": self.updated_to.isoformat(), "run_id": self.run_id}
        return json.dumps(document).encode()

    @classmethod
    def from_json(cls, data: bytes, etag: str | None) -> Watermark:
        document = json.loads(data)
        return cls(datetime.fromisoformat(document["updated_to"]), document["run_id"], etag)


class WatermarkConflictError(RuntimeError):
    """Raised when the watermark changed since it was read."""


class WatermarkStore(Protocol):
    def read(self, feed: str) -> Watermark | None: ...

    def write(self, feed: str, mark: Watermark, expected_etag: str | None) -> str: ...


def advance_watermark(store: WatermarkStore, feed: str, mark: Watermark) -> bool:
    """Move the watermark forward to `mark`; never backward. Return True if written."""
    current = store.read(feed)
    if current is not None and current.updated_to >= mark.updated_to:
        log.warning(
            "watermark not moved back, feed=%s current=%s run_id=%s updated_to=%s",
            feed, current.updated_to.isoformat(), mark.run_id, mark.updated_to.isoformat(),
        )
        return False
    store.write(feed, mark, current.etag if current else None)
    log.info(
        "watermark advanced, feed=%s run_id=%s updated_to=%s",
        feed, mark.run_id, mark.updated_to.isoformat(),
    )
    return True


class FileWatermarkStore:
    """Watermarks in a local folder; the ETag is the SHA-256 of the file."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, feed: str) -> Path:
        return self.folder / f"{feed}.json"

    def read(self, feed: str) -> Watermark | None:
        path = self._path(feed)
        if not path.exists():
            return None
        data = path.read_bytes()
        return Watermark.from_json(data, hashlib.sha256(data).hexdigest())

    def write(self, feed: str, mark: Watermark, expected_etag: str | None) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(feed)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = path.read_bytes() if path.exists() else None
            current_etag = hashlib.sha256(current).hexdigest() if current else None
            if current_etag != expected_etag:
                raise WatermarkConflictError(
                    f"watermark {path} changed since it was read; another run moved it"
                )
            data = mark.to_json()
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return hashlib.sha256(data).hexdigest()


class BlobWatermarkStore:
    """Watermarks in Azure Blob Storage, written with an ETag condition."""

    def __init__(self, container_client) -> None:
        self._container = container_client

    @classmethod
    def from_settings(cls, settings) -> BlobWatermarkStore:
        from azure.storage.blob import BlobServiceClient

        if settings.watermark_connection_string:
            service = BlobServiceClient.from_connection_string(
                settings.watermark_connection_string
            )
        else:
            from azure.identity import DefaultAzureCredential

            service = BlobServiceClient(
                settings.watermark_account_url, credential=DefaultAzureCredential()
            )
        container = service.get_container_client(settings.watermark_container)
        return cls(container)

    def ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._container.create_container()
        except ResourceExistsError:
            pass

    def read(self, feed: str) -> Watermark | None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._container.get_blob_client(f"{feed}.json")
        try:
            download = blob.download_blob()
        except ResourceNotFoundError:
            return None
        return Watermark.from_json(download.readall(), download.properties.etag)

    def write(self, feed: str, mark: Watermark, expected_etag: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        blob = self._container.get_blob_client(f"{feed}.json")
        try:
            if expected_etag is None:
                result = blob.upload_blob(mark.to_json(), overwrite=False)
            else:
                result = blob.upload_blob(
                    mark.to_json(),
                    overwrite=True,
                    etag=expected_etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise WatermarkConflictError(
                f"watermark {feed}.json changed since it was read: {exc.reason}"
            ) from None
        return result["etag"]
