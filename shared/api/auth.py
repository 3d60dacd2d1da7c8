"""API keys: created once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

log = logging.getLogger(__name__)

PERMISSIONS = ("read", "trade", "admin")


@dataclass(frozen=True)
class Principal:
    client_name: str
    permissions: frozenset[str]
    key_id: int | None = None

    def allows(self, permission: str) -> bool:
        # admin implies every permission; trade implies read.
        if "admin" in self.permissions:
            return True
        if permission == "read" and "trade" in self.permissions:
            return True
        return permission in self.permissions


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(conn: psycopg.Connection, client_name: str,
                   permissions: list[str], expires_at: datetime | None = None) -> tuple[int, str]:
    """Create a key and return (id, key); the key itself is not stored."""
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise ValueError(f"unknown permissions {unknown}; use any of {list(PERMISSIONS)}")
    key = "do_" + secrets.token_urlsafe(32)
    key_id = conn.execute(
        "insert into api_keys (key_hash, client_name, permissions, expires_at)"
        " values (%s, %s, %s, %s) returning id",
        (hash_key(key), client_name, sorted(set(permissions)), expires_at),
    ).fetchone()[0]
    log.info("api key created, key_id=%s client=%s", key_id, client_name)
    return key_id, key


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
