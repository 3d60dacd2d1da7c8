"""Response models of the API; field names are snake_case throughout."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


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
    price_cents: int
    price_per_carat_cents: int
    feed_price_cents: int
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
    items: list[Diamond]
    total: int
    page: int
    limit: int


class Health(BaseModel):
    status: str
    database: str
