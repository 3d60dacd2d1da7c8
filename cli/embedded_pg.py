"""An embedded PostgreSQL server for machines without one (pgserver wheel)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "diamond_opus"


def start_embedded_postgres(data_dir: str | None = None) -> str:
    """Start (or reuse) the embedded server and return a URL to the app's database."""
    import pgserver

    # pgserver opens read access on every parent folder of its data folder, so
    # the folder stays under the temporary directory.
    folder = Path(data_dir or Path(tempfile.gettempdir()) / "diamond-opus" / "pgdata")
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder.parent))
    server = pgserver.get_server(str(folder), cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f"create database {DATABASE_NAME}")
    log.info("embedded PostgreSQL ready, data_dir=%s", folder)
    return server.get_uri(DATABASE_NAME)
