"""Request and response models of the API; field names are snake_case throughout."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorEnvelope(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


class Certificate(BaseModel):
    lab: str | None
    number: str
    pdf_url: str | None


class Diamond(BaseModel):
    id: int
    feed: str
    supplier_stone_id: str
    offer_id: str
    shape: str
    carats: Decimal
    color: str | None
    clarity: str | None
    cut: str | None
    polish: str | None
    symmetry: str | None
    fluorescence: str | None
    lab_grown: bool
    treated: bool
    price_cents: int = Field(
        description="Retail price in cents: feed_price_cents x markup_ratio,"
        " rounded half up"
    )
    price_per_carat_cents: int = Field(
        description="Retail price per carat in cents: price_cents / carats,"
        " rounded half up"
    )
    feed_price_cents: int = Field(description="The supplier's price in cents")
    feed_price_per_carat_cents: int = Field(
        description="The supplier's price per carat in cents: feed_price_cents /"
        " the carats that the supplier sent, which may have more than 3 decimals,"
        " rounded half up"
    )
    markup_ratio: Decimal
    rating: int | None
    availability: str
    hold_id: str | None
    image_url: str | None
    video_url: str | None
    v360_url: str | None
    certificate: Certificate
    depth_percent: Decimal | None
    table_percent: Decimal | None
    length_width_ratio: Decimal | None
    measurements: dict
    supplier_name: str | None
    status: str
    updated_at: datetime


class DiamondPage(BaseModel):
    """One page of a search. Pass `next_cursor` back as `cursor` for the next page."""

    items: list[Diamond]
    limit: int
    page: int | None = Field(description="Page number; null in cursor mode")
    next_cursor: str | None = Field(description="Cursor of the next page; null at the end")
    total: int | None = Field(description="Matching stones; only with include_total=true")


class Health(BaseModel):
    status: str
    database: str


class HoldResponse(BaseModel):
    hold_id: int | None = Field(description="Hold id in this API, for DELETE /holds/{id}")
    diamond_id: int
    supplier_hold_id: str | None
    status: Literal["active", "denied", "cancelled", "failed"]
    denied: bool
    until: datetime | None


class PurchaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination_id: str | None = Field(None, max_length=200)
    customer_order_number: str | None = Field(None, max_length=200)
    customer_comment: str | None = Field(None, max_length=2000)
    return_option: bool | None = None


class PurchaseResponse(BaseModel):
    purchase_id: int
    diamond_id: int
    offer_id: str
    status: Literal["completed", "failed"]
    supplier_order_id: str | None
    idempotency_key: str


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_name: str = Field(min_length=1, max_length=200)
    permissions: list[Literal["read", "trade", "admin"]] = Field(min_length=1)
    expires_at: datetime | None = None


class ApiKeyInfo(BaseModel):
    id: int
    client_name: str
    permissions: list[str]
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="The key itself; shown only in this response")


class RunStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_type: Literal["full", "incremental"]


class RunIdRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=200)


class TriggerResponse(BaseModel):
    run_id: str
    action: str
    instance_id: str | None = None
    details: dict = Field(default_factory=dict)


class RepriceSummary(BaseModel):
    changed: int
    seconds: float


class PricingRule(BaseModel):
    id: int
    priority: int
    carat_min: Decimal | None
    carat_max: Decimal | None
    shapes: list[str] | None
    lab_grown: bool | None
    feed: str | None
    feed_price_min_cents: int | None
    feed_price_max_cents: int | None
    markup_ratio: Decimal
    rating: int
    active: bool
    description: str | None
    created_at: datetime
    updated_at: datetime


class PricingRuleChange(BaseModel):
    rule: PricingRule
    reprice: RepriceSummary
