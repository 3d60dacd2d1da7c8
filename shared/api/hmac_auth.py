"""HMAC request signatures.

A client sends `X-Client-Id`, `X-Timestamp` (integer Unix seconds) and
`X-Signature`, the hex HMAC-SHA256 with one of its secrets of::

    METHOD + "\\n" + path_and_query + "\\n" + timestamp + "\\n" + hex SHA-256(body)

`path_and_query` is the full request path, `/api/v2` prefix included, then
`?` and the raw query string when there is one. Behind the Azure Functions
`AsgiMiddleware` the path reaches the app percent-decoded while the query
stays encoded, so clients sign the decoded path (`/api/v2/a b`, not
`/api/v2/a%20b`) and the query exactly as sent.

HMAC clients get the `read` and `trade` permissions, never `admin`: admin
routes need an API key with the admin permission.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time

import psycopg

from shared.api.auth import Principal

log = logging.getLogger(__name__)

HMAC_PERMISSIONS = frozenset({"read", "trade"})

_prune_lock = threading.Lock()
_last_prune = 0.0
_PRUNE_INTERVAL_SECONDS = 60.0
MAX_TIMESTAMP_DIGITS = 20


class SignatureError(Exception):
    """A signature that fails verification; the message is safe for the client."""


def string_to_sign(method: str, path_and_query: str, timestamp: str, body: bytes) -> str:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path_and_query}\n{timestamp}\n{body_hash}"


def sign(secret: str, method: str, path_and_query: str, timestamp: str, body: bytes) -> str:
    """Return the hex signature a client sends for this request."""
    message = string_to_sign(method, path_and_query, timestamp, body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def parse_timestamp(text: str, now: float, tolerance_seconds: int) -> int:
    """Return the timestamp as an int, or raise when it is malformed or too far off."""
    # More digits than MAX_TIMESTAMP_DIGITS cannot be near the clock, and int()
    # raises ValueError on strings of over 4,300 digits.
    if not text.isascii() or not text.isdigit() or len(text) > MAX_TIMESTAMP_DIGITS:
        raise SignatureError(
            f"X-Timestamp {text[:40]!r} is invalid; send integer Unix seconds"
        )
    timestamp = int(text)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(
            f"X-Timestamp {timestamp} is more than {tolerance_seconds} s from the"
            " server clock; sign the request again with the current time"
        )
    return timestamp


def verify_signature(
    secrets: list[str],
    signature: str,
    method: str,
    path_and_query: str,
    timestamp: str,
    body: bytes,
) -> bool:
    """Check `signature` against each active secret in constant time."""
    # hmac.compare_digest raises TypeError on non-ASCII text, and a hex
    # signature is always ASCII.
    if not signature.isascii():
        return False
    matched = False
    for secret in secrets:
        expected = sign(secret, method, path_and_query, timestamp, body)
        # Compare with every secret, so the timing does not reveal which matched.
        matched |= hmac.compare_digest(expected, signature.lower())
    return matched


def authenticate_hmac(
    conn: psycopg.Connection,
    client_secrets: dict[str, list[str]],
    tolerance_seconds: int,
    *,
    client_id: str,
    timestamp: str,
    signature: str,
    method: str,
    path_and_query: str,
    body: bytes,
) -> Principal:
    """Verify a signed request and record its signature; raise SignatureError."""
    parse_timestamp(timestamp, time.time(), tolerance_seconds)
    secrets = client_secrets.get(client_id)
    if not secrets:
        raise SignatureError(f"HMAC client {client_id[:60]!r} is unknown")
    if not verify_signature(secrets, signature, method, path_and_query, timestamp, body):
        raise SignatureError(
            "X-Signature does not match the request; sign METHOD, the full path"
            " with its query, the timestamp and the body's SHA-256"
        )
    _prune_signatures(conn, tolerance_seconds)
    inserted = conn.execute(
        "insert into api_hmac_signatures (signature, client_id) values (%s, %s)"
        " on conflict (signature) do nothing",
        (signature.lower(), client_id),
    ).rowcount
    if not inserted:
        log.warning("replayed HMAC signature rejected, client_id=%s", client_id)
        raise SignatureError("this signature was already used; sign each request once")
    return Principal(client_id, HMAC_PERMISSIONS)


def _prune_signatures(conn: psycopg.Connection, tolerance_seconds: int) -> None:
    # A signature older than twice the tolerance can no longer pass the
    # timestamp check, so it need not be kept. Each process prunes at most
    # once a minute.
    global _last_prune
    with _prune_lock:
        if time.monotonic() - _last_prune < _PRUNE_INTERVAL_SECONDS:
            return
        _last_prune = time.monotonic()
    conn.execute(
        "delete from api_hmac_signatures where created_at < now() - make_interval(secs => %s)",
        (2 * tolerance_seconds,),
    )
