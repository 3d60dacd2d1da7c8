"""Pricing rules: list, create, update, deactivate, preview.

Reads need `read`; changes and previews need `admin`. Every change re-prices
the stored inventory before the response is sent.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

import shared.pricing as pricing
from shared.api.deps import get_conn, require
from shared.api.errors import ApiError
from shared.api.models import ErrorEnvelope, PricingRule, PricingRuleChange

router = APIRouter(
    prefix="/api/v2/pricing-rules",
    tags=["pricing rules"],
    responses={status: {"model": ErrorEnvelope} for status in (401, 403, 404, 422, 429)},
)

Conn = Annotated[psycopg.Connection, Depends(get_conn)]
RuleId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Admin = Annotated[object, Depends(require("admin"))]


@router.get("", response_model=list[PricingRule], summary="List pricing rules")
def list_rules(conn: Conn, _: Annotated[object, Depends(require("read"))]) -> list:
    return pricing.list_rules(conn)


@router.post("", response_model=PricingRuleChange, status_code=201,
             summary="Create a rule and re-price the inventory")
async def create_rule(body: pricing.PricingRuleInput, conn: Conn, _: Admin) -> dict:
    return await _change(pricing.create_rule, conn, body)


@router.put("/{rule_id}", response_model=PricingRuleChange,
            summary="Replace a rule and re-price the inventory")
async def update_rule(
    rule_id: RuleId, body: pricing.PricingRuleInput, conn: Conn, _: Admin
) -> dict:
    await _require_rule(conn, rule_id)
    return await _change(pricing.update_rule, conn, rule_id, body)


@router.delete("/{rule_id}", response_model=PricingRuleChange,
               summary="Deactivate a rule and re-price the inventory")
async def deactivate_rule(rule_id: RuleId, conn: Conn, _: Admin) -> dict:
    await _require_rule(conn, rule_id)
    return await _change(pricing.deactivate_rule, conn, rule_id)


@router.post("/preview", summary="Preview a rule's effect without saving it")
async def preview_rule(
    body: pricing.PricingRuleInput,
    conn: Conn,
    _: Admin,
    rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> dict:
    """Return stones matched, stones whose price changes and the total change."""
    if rule_id is not None:
        await _require_rule(conn, rule_id)
    try:
        return await run_in_threadpool(pricing.preview_rule, conn, body, rule_id)
    except pricing.PricingRuleError as exc:
        raise ApiError(422, str(exc)) from None
    finally:
        conn.rollback()


async def _require_rule(conn: psycopg.Connection, rule_id: int) -> None:
    if await run_in_threadpool(pricing.get_rule, conn, rule_id) is None:
        raise ApiError(404, f"pricing rule {rule_id} not found")


async def _change(function, conn: psycopg.Connection, *args) -> dict:
    try:
        rule, result = await run_in_threadpool(function, conn, *args)
    except pricing.PricingRuleError as exc:
        conn.rollback()
        raise ApiError(422, str(exc)) from None
    conn.commit()
    return {"rule": rule, "reprice": {"changed": result.changed, "seconds": result.seconds}}
