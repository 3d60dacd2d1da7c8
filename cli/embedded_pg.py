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
    # pgserver opens read access on every parent folder of its data folder, so
    # the folder stays under the temporary directory.
    folder = Path(data_dir or Path(tempfile.gettempdir()) / "diamond-opus" / "pgdata")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # pgserver keeps its lock file in the user's runtime folder, which must be
    # private (mode 0700) and set before pgserver is imported.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime_dir = folder.parent / "runtime"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        runtime_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    import pgserver

    server = pgserver.get_server(str(folder), cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f"create database {DATABASE_NAME}")
    log.info("embedded PostgreSQL ready, data_dir=%s", folder)
    return server.get_uri(DATABASE_NAME)
