"""Purchases with an idempotency key.

The key row is inserted (status pending) and committed before the supplier
is called, because Nivoda has no idempotency key for orders. Only the
request that inserts the row places the order. Every other request with the
same key replays the stored response byte for byte, or gets 409 while the
first is still running. Rows are never deleted here, so a key is kept at
least the 24 hours that clients may rely on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from shared.holds import load_diamond
from shared.nivoda import NivodaError

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 200


class PurchaseError(Exception):
    """A request that cannot proceed; not stored against the key."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    replayed: bool


def request_hash(diamond_id: int, body: dict) -> str:
    canonical = json.dumps({"diamond_id": diamond_id, "body": body}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def purchase(
    runtime, *, client_key: str, client_name: str, idempotency_key: str,
    diamond_id: int, body: dict,
) -> StoredResponse:
    """Order a stone once per idempotency key and return the stored response."""
    # Keys are scoped per client, so one client can never read another's response.
    scoped_key = f"{client_key}:{idempotency_key}"
    digest = request_hash(diamond_id, body)
    purchase_id = _claim_key(runtime, scoped_key, digest, diamond_id, client_name)
    if isinstance(purchase_id, StoredResponse):
        return purchase_id

    status, payload, order_id = _place_order(runtime, purchase_id, diamond_id, body,
                                             client_name)
    if "error" in payload:
        payload["error"]["details"] = {"idempotency_key": idempotency_key}
    else:
        payload["idempotency_key"] = idempotency_key
    text = json.dumps(payload, separators=(",", ":"))
    outcome = "completed" if status == 201 else "failed"
    with runtime.pool.connection() as conn:
        conn.execute(
            "update purchase_history set status = %s, supplier_order_id = %s,"
            " response_status = %s, response_body = %s, updated_at = now()"
            " where id = %s",
            (outcome, order_id, status, text, purchase_id),
        )
        if order_id is not None:
            conn.execute(
                "update diamonds set availability = 'sold', raw_availability = 'SOLD',"
                " hold_id = null, updated_at = now() where id = %s",
                (diamond_id,),
            )
        conn.commit()
    return StoredResponse(status, text.encode(), replayed=False)


def _claim_key(runtime, scoped_key, digest, diamond_id, client_name):
    with runtime.pool.connection() as conn:
        row = conn.execute(
            "insert into purchase_history (idempotency_key, request_hash, diamond_id,"
            " status, client_name) values (%s, %s, null, 'pending', %s)"
            " on conflict (idempotency_key) do nothing returning id",
            (scoped_key, digest, client_name),
        ).fetchone()
        conn.commit()
        if row is not None:
            return row[0]
        return _replay(conn, scoped_key, digest)


def _replay(conn: psycopg.Connection, scoped_key: str, digest: str) -> StoredResponse:
    with conn.cursor(row_factory=dict_row) as cur:
        stored = cur.execute(
            "select request_hash, status, response_status, response_body"
            " from purchase_history where idempotency_key = %s",
            (scoped_key,),
        ).fetchone()
    if stored["request_hash"] != digest:
        raise PurchaseError(
            422,
            "Idempotency-Key was already used with a different request; send a new"
            " key for a new purchase",
        )
    if stored["status"] == "pending":
        # NOTE: a process that dies between claiming the key and storing the
        # response leaves the key pending. The key then stays 409 until an
        # operator checks the supplier's orders and settles the row.
        raise PurchaseError(
            409, "a purchase with this Idempotency-Key is in progress; retry shortly"
        )
    return StoredResponse(
        stored["response_status"], stored["response_body"].encode(), replayed=True
    )


def _place_order(runtime, purchase_id: int, diamond_id: int, body: dict,
                 client_name: str):
    with runtime.pool.connection() as conn:
        row = load_diamond(conn, diamond_id)
        holder = conn.execute(
            "select client_name from hold_history where diamond_id = %s"
            " and status in ('pending', 'active')",
            (diamond_id,),
        ).fetchone()
        if row is not None:
            conn.execute(
                "update purchase_history set diamond_id = %s, offer_id = %s where id = %s",
                (diamond_id, row["offer_id"], purchase_id),
            )
            conn.commit()
    if row is None or row["status"] != "active":
        return 404, _error("not_found", f"diamond {diamond_id} not found"), None
    if row["availability"] == "sold":
        message = f"diamond {diamond_id} is already sold"
        return 409, _error("conflict", message), None
    if holder is not None and holder[0] != client_name:
        message = f"diamond {diamond_id} is on hold for another client"
        return 409, _error("conflict", message), None
    try:
        order_id = runtime.nivoda.create_order(row["offer_id"], **body)
    except NivodaError as exc:
        log.error(
            "order failed at the supplier, purchase_id=%s diamond_id=%s error=%s",
            purchase_id, diamond_id, exc,
        )
        return 502, _error("supplier_error", f"the supplier rejected the order: {exc}"), None
    log.info(
        "order placed, purchase_id=%s diamond_id=%s order_id=%s",
        purchase_id, diamond_id, order_id,
    )
    payload = {
        "purchase_id": purchase_id,
        "diamond_id": diamond_id,
        "offer_id": row["offer_id"],
        "status": "completed",
        "supplier_order_id": order_id,
    }
    return 201, payload, order_id


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
