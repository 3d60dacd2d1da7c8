"""API keys: created once, stored only as a SHA-256 hash.

The CLI and the admin routes call `create_api_key`, `list_api_keys` and
`revoke_api_key`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

PERMISSIONS = ("read", "trade", "admin")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: an API key or an HMAC client."""

    client_name: str
    permissions: frozenset[str]
    key_id: int | None = None

    @property
    def rate_limit_key(self) -> str:
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return f"hmac:{self.client_name}"

    def allows(self, permission: str) -> bool:
        # admin implies every permission; trade implies read.
        if "admin" in self.permissions:
            return True
        if permission == "read" and "trade" in self.permissions:
            return True
        return permission in self.permissions


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    conn: psycopg.Connection,
    client_name: str,
    permissions: list[str],
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """Create a key and return (id, key); the key itself is not stored."""
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise ValueError(
            f"unknown permissions {unknown}; use any of {list(PERMISSIONS)}"
        )
    if not permissions:
        raise ValueError(f"no permission given; use any of {list(PERMISSIONS)}")
    if not client_name.strip():
        raise ValueError("client name is empty; name the client that uses the key")
    expires_at = _expiry_in_utc(expires_at)
    key = "do_" + secrets.token_urlsafe(32)
    key_id = conn.execute(
        "insert into api_keys (key_hash, client_name, permissions, expires_at)"
        " values (%s, %s, %s, %s) returning id",
        (hash_key(key), client_name, sorted(set(permissions)), expires_at),
    ).fetchone()[0]
    log.info("api key created, key_id=%s client=%s", key_id, client_name)
    return key_id, key


def _expiry_in_utc(expires_at: datetime | None) -> datetime | None:
    """Convert an expiry to UTC, reading a naive time as UTC.

    PostgreSQL stores times after year 9999, but psycopg cannot load them, so
    such an expiry would break every later key listing. It raises ValueError.
    """
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        return expires_at.replace(tzinfo=UTC)
    try:
        return expires_at.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"expires_at {expires_at.isoformat()} is after year 9999 in UTC;"
            " send an earlier time"
        ) from None


def list_api_keys(conn: psycopg.Connection, *, include_revoked: bool = True) -> list[dict]:
    """Return every key's metadata (never the key or its hash), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select id, client_name, permissions, active, created_at, last_used_at,"
            " expires_at from api_keys where active or %s order by id desc",
            (include_revoked,),
        ).fetchall()


def revoke_api_key(conn: psycopg.Connection, key_id: int) -> bool:
    """Deactivate a key; False when no key has this id."""
    cur = conn.execute("update api_keys set active = false where id = %s", (key_id,))
    if cur.rowcount:
        log.info("api key revoked, key_id=%s", key_id)
    return cur.rowcount == 1


def authenticate_key(conn: psycopg.Connection, key: str) -> Principal | None:
    """Look a key up by hash; None unless it is active and unexpired."""
    row = conn.execute(
        "select id, client_name, permissions from api_keys where key_hash = %s"
        " and active and (expires_at is null or expires_at > now())",
        (hash_key(key),),
    ).fetchone()
    if row is None:
        return None
    # Touch last_used_at at most once a minute, not on every request.
    conn.execute(
        "update api_keys set last_used_at = now() where id = %s and"
        " (last_used_at is null or last_used_at < now() - interval '1 minute')",
        (row[0],),
    )
    return Principal(row[1], frozenset(row[2]), row[0])
