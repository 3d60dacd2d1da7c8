"""Connection pool and versioned migrations."""

from __future__ import annotations

import logging
import threading
from importlib import resources

import psycopg
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# Any constant works as long as every entry point uses the same one.
_MIGRATION_LOCK_ID = 7_402_119


def open_pool(database_url: str, *, max_size: int = 8) -> ConnectionPool:
    """Open a pool and wait until one connection works."""
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": False},
        open=False,
        name="diamond-opus",
    )
    pool.open(wait=True, timeout=30)
    return pool


def list_migrations() -> list[tuple[str, str]]:
    """Return (version, sql) for every bundled migration, in order."""
    folder = resources.files("shared") / "migrations"
    files = sorted(
        entry for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    return [(entry.name.removesuffix(".sql"), entry.read_text()) for entry in files]


def migrate(conninfo_or_conn: str | psycopg.Connection) -> list[str]:
    """Apply pending migrations under an advisory lock; return the versions applied."""
    if isinstance(conninfo_or_conn, str):
        with psycopg.connect(conninfo_or_conn) as conn:
            return _migrate(conn)
    return _migrate(conninfo_or_conn)


def _migrate(conn: psycopg.Connection) -> list[str]:
    applied: list[str] = []
    with conn.transaction():
        # Several workers start at once in Azure; the lock makes them take turns.
        conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        conn.execute(
            "create table if not exists schema_migrations ("
            " version text primary key,"
            " applied_at timestamptz not null default now())"
        )
        done = {row[0] for row in conn.execute("select version from schema_migrations")}
        for version, sql in list_migrations():
            if version in done:
                continue
            conn.execute(sql)
            conn.execute(
                "insert into schema_migrations (version) values (%s)", (version,)
            )
            applied.append(version)
    if applied:
        log.info("applied migrations %s", ", ".join(applied))
    return applied


_migrated: set[str] = set()
_migrated_lock = threading.Lock()


def migrate_once(database_url: str) -> None:
    """Run migrations the first time this process connects to a database."""
    with _migrated_lock:
        if database_url in _migrated:
            return
        migrate(database_url)
        _migrated.add(database_url)
