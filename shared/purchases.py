"""Purchases with an idempotency key.

The key row is inserted (status pending) and committed before the supplier
is called, because Nivoda has no idempotency key for orders. Only the
request that claimed the pending row places the order. Every other request
with the same key replays the stored response byte for byte, or gets 409
while the first is still running.

Final outcomes (an order, or a rejection such as an unknown, sold or held
stone) are replayed for as long as the row is kept. A transient failure
(the supplier could not be reached, timed out, returned 5xx or rate-limited
the order) is stored with `retryable` set, and the next request with the
same key and body claims the row again and calls the supplier again.

One stone has at most one pending purchase. The pending row records its
stone while the diamond row is locked, under the partial unique index
`purchase_history_one_pending`, so a purchase of the same stone under
another key gets 409 without calling the supplier. Rows are never deleted
here, so a key is kept at least the 24 hours that clients may rely on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from shared.nivoda import NivodaError, RetriableNivodaError

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 200

# A transient failure of the same request gives its key back: the row is
# pending again, with the stone, its price and the response of the last try
# cleared.
_CLAIM_KEY = (
    "insert into purchase_history (idempotency_key, request_hash, diamond_id,"
    " status, client_name) values (%s, %s, null, 'pending', %s)"
    " on conflict (idempotency_key) do update set status = 'pending',"
    " diamond_id = null, offer_id = null, price_cents = null, response_status = null,"
    " response_body = null, retryable = false, updated_at = now()"
    " where purchase_history.status = 'failed' and purchase_history.retryable"
    " and purchase_history.request_hash = excluded.request_hash"
    " returning id"
)


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


@dataclass(frozen=True)
class _Outcome:
    """The response of one purchase attempt, before the key is added to it."""

    status: int
    payload: dict
    order_id: str | None = None
    retryable: bool = False


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
    purchase_id = _claim_key(runtime, scoped_key, digest, client_name)
    if isinstance(purchase_id, StoredResponse):
        return purchase_id

    stone, outcome = _reserve_stone(runtime, purchase_id, diamond_id, client_name)
    if outcome is None:
        outcome = _order(runtime, purchase_id, stone, body)
    text = _response_text(outcome.payload, idempotency_key)
    _store_outcome(runtime, purchase_id, stone, outcome, text)
    return StoredResponse(outcome.status, text.encode(), replayed=False)


def _claim_key(runtime, scoped_key, digest, client_name):
    with runtime.pool.connection() as conn:
        row = conn.execute(_CLAIM_KEY, (scoped_key, digest, client_name)).fetchone()
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
        # A process that dies between claiming the key and storing the
        # response leaves the key pending, and with it the stone once it was
        # recorded. Both stay 409 until an operator checks the supplier's
        # orders and runs `diamond-opus purchases release-interrupted`.
        raise PurchaseError(
            409, "a purchase with this Idempotency-Key is in progress; retry shortly"
        )
    # A retryable row lands here only when it failed between this request's
    # claim and this read; the client's next retry claims it.
    return StoredResponse(
        stored["response_status"], stored["response_body"].encode(), replayed=True
    )


def _reserve_stone(runtime, purchase_id: int, diamond_id: int, client_name: str):
    """Record the stone on the pending row; return the stone and any rejection.

    The rejection is None when the caller may order the stone.
    """
    with runtime.pool.connection() as conn:
        # The row lock makes this check wait for a purchase of the stone that
        # is storing its order, so a stone sold a moment ago is seen as sold.
        # Unlike FOR UPDATE, FOR NO KEY UPDATE does not block the foreign key
        # checks of rows that reference the diamond, such as a new hold's.
        with conn.cursor(row_factory=dict_row) as cur:
            stone = cur.execute(
                "select * from diamonds where id = %s for no key update", (diamond_id,)
            ).fetchone()
        rejection = _check_purchasable(conn, stone, diamond_id, client_name)
        if rejection is not None:
            conn.rollback()
            return stone, rejection
        try:
            conn.execute(
                "update purchase_history set diamond_id = %s, offer_id = %s,"
                " price_cents = %s where id = %s",
                (diamond_id, stone["offer_id"], stone["priced_price_cents"],
                 purchase_id),
            )
            conn.commit()
        except psycopg.errors.UniqueViolation:
            conn.rollback()
            message = (
                f"diamond {diamond_id} has a purchase in progress under another"
                " Idempotency-Key; retry shortly with the same key"
            )
            return stone, _Outcome(409, _error("conflict", message), retryable=True)
    return stone, None


def _check_purchasable(conn, stone: dict | None, diamond_id: int,
                       client_name: str) -> _Outcome | None:
    if stone is None or stone["status"] != "active":
        return _Outcome(404, _error("not_found", f"diamond {diamond_id} not found"))
    if stone["availability"] == "sold":
        message = f"diamond {diamond_id} is already sold"
        return _Outcome(409, _error("conflict", message))
    holder = conn.execute(
        "select client_name from hold_history where diamond_id = %s"
        " and status in ('pending', 'active')",
        (diamond_id,),
    ).fetchone()
    if holder is not None and holder[0] != client_name:
        message = f"diamond {diamond_id} is on hold for another client"
        return _Outcome(409, _error("conflict", message))
    return None


def _order(runtime, purchase_id: int, stone: dict, body: dict) -> _Outcome:
    diamond_id = stone["id"]
    try:
        order_id = runtime.nivoda.create_order(stone["offer_id"], **body)
    except RetriableNivodaError as exc:
        # NOTE: after a timeout or a 5xx the supplier may have placed the
        # order. A retry then gets the supplier's rejection of a sold stone
        # (502), not a second order, as long as the supplier sells a stone
        # only once, as the simulator does.
        log.error(
            "order failed transiently at the supplier, purchase_id=%s diamond_id=%s"
            " error=%s", purchase_id, diamond_id, exc,
        )
        message = (
            f"the supplier could not take the order now: {exc}; retry with the same"
            " Idempotency-Key"
        )
        return _Outcome(503, _error("supplier_unavailable", message), retryable=True)
    except NivodaError as exc:
        log.error(
            "order failed at the supplier, purchase_id=%s diamond_id=%s error=%s",
            purchase_id, diamond_id, exc,
        )
        return _Outcome(502, _error("supplier_error",
                                    f"the supplier rejected the order: {exc}"))
    log.info(
        "order placed, purchase_id=%s diamond_id=%s order_id=%s",
        purchase_id, diamond_id, order_id,
    )
    payload = {
        "purchase_id": purchase_id,
        "diamond_id": diamond_id,
        "offer_id": stone["offer_id"],
        "price_cents": stone["priced_price_cents"],
        "status": "completed",
        "supplier_order_id": order_id,
    }
    return _Outcome(201, payload, order_id)


def _response_text(payload: dict, idempotency_key: str) -> str:
    if "error" in payload:
        payload["error"]["details"] = {"idempotency_key": idempotency_key}
    else:
        payload["idempotency_key"] = idempotency_key
    return json.dumps(payload, separators=(",", ":"))


def _store_outcome(runtime, purchase_id: int, stone: dict | None, outcome: _Outcome,
                   text: str) -> None:
    status = "completed" if outcome.order_id is not None else "failed"
    diamond_id = stone["id"] if stone is not None else None
    offer_id = stone["offer_id"] if stone is not None else None
    with runtime.pool.connection() as conn:
        if outcome.order_id is not None:
            # The diamond row is updated before purchase_history, the order in
            # which _reserve_stone takes its locks, so the two cannot deadlock.
            conn.execute(
                "update diamonds set availability = 'sold', raw_availability = 'SOLD',"
                " hold_id = null, updated_at = now() where id = %s",
                (diamond_id,),
            )
        conn.execute(
            "update purchase_history set status = %s, diamond_id = %s, offer_id = %s,"
            " supplier_order_id = %s, response_status = %s, response_body = %s,"
            " retryable = %s, updated_at = now() where id = %s and status = 'pending'",
            (status, diamond_id, offer_id, outcome.order_id, outcome.status, text,
             outcome.retryable, purchase_id),
        )
        conn.commit()


_RELEASE_INTERRUPTED = (
    "update purchase_history set status = 'failed', retryable = true,"
    " response_status = 503, response_body = %s, updated_at = now()"
    " where status = 'pending' and updated_at < now() - make_interval(mins => %s)"
    " returning id, idempotency_key, diamond_id"
)


def release_interrupted(conn: psycopg.Connection, older_than_minutes: int) -> list[dict]:
    """Release purchases left pending for over `older_than_minutes`; return them.

    A process that dies between claiming a key and storing the outcome leaves
    the key and its stone blocked with 409. A released purchase is failed and
    retryable, like a transient supplier failure, so the client's retry with
    the same key and body tries the order again, and the stone can be bought
    under another key. Check the supplier's orders for the released stones
    first: the supplier may have placed the order before the process died.
    Commits.
    """
    message = (
        "the purchase was interrupted before its outcome was stored; retry with"
        " the same Idempotency-Key"
    )
    body = json.dumps(_error("supplier_unavailable", message), separators=(",", ":"))
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        released = cur.execute(_RELEASE_INTERRUPTED, (body, older_than_minutes)).fetchall()
    for row in released:
        log.warning(
            "interrupted purchase released, purchase_id=%s diamond_id=%s",
            row["id"], row["diamond_id"],
        )
    return released


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
