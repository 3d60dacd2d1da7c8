"""Pydantic models of one `diamonds_by_query` item.

The models ignore unknown fields, so new supplier fields do not break them.
They are strict where a wrong type would corrupt data. Prices are integer
cents, carats and percentages are JSON numbers read into exact `Decimal`s,
and flags are JSON booleans. Consolidation maps payloads with
`shared.mapping.map_offer`, which applies the same rules without pydantic
because it runs a million times per run. These models are the typed view for
callers of the client and the reference that the mapping is tested against.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)


def _json_number_to_decimal(value: Any) -> Any:
    # str() of a float gives the shortest text that reads back as the same
    # float, which is the text the JSON document carried (0.3, not
    # 0.299999...).
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # pydantic reports ValueError as a validation error, not TypeError.
        raise ValueError(f"expected a JSON number, got {value!r}")  # noqa: TRY004
    return Decimal(str(value))


JsonDecimal = Annotated[Decimal, BeforeValidator(_json_number_to_decimal)]


class _PayloadModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Certificate(_PayloadModel):
    """Grading report of the stone, as Nivoda returns it."""

    id: StrictStr | None = None
    lab: StrictStr | None = None
    cert_number: StrictStr = Field(alias="certNumber", min_length=1)
    pdf_url: StrictStr | None = Field(default=None, alias="pdfUrl")
    shape: StrictStr = Field(min_length=1)
    carats: JsonDecimal = Field(gt=0)
    color: StrictStr | None = None
    clarity: StrictStr | None = None
    cut: StrictStr | None = None
    polish: StrictStr | None = None
    symmetry: StrictStr | None = None
    flo_int: StrictStr | None = Field(default=None, alias="floInt")
    flo_col: StrictStr | None = Field(default=None, alias="floCol")
    length: JsonDecimal | None = None
    width: JsonDecimal | None = None
    depth: JsonDecimal | None = None
    depth_percentage: JsonDecimal | None = Field(default=None, alias="depthPercentage")
    table: JsonDecimal | None = None
    crown_angle: JsonDecimal | None = Field(default=None, alias="crownAngle")
    crown_height: JsonDecimal | None = Field(default=None, alias="crownHeight")
    pav_angle: JsonDecimal | None = Field(default=None, alias="pavAngle")
    pav_depth: JsonDecimal | None = Field(default=None, alias="pavDepth")
    girdle: StrictStr | None = None
    culet_size: StrictStr | None = Field(default=None, alias="culetSize")
    labgrown: StrictBool
    treated: StrictBool | None = None
    f_color: StrictStr | None = None
    f_intensity: StrictStr | None = None
    f_overtone: StrictStr | None = None


class Supplier(_PayloadModel):
    """The supplier that lists the stone on Nivoda."""

    id: StrictStr | None = None
    name: StrictStr | None = None
    legal_name: StrictStr | None = None


class DeliveryTime(_PayloadModel):
    """Delivery estimate in business days."""

    min_business_days: StrictInt | None = None
    max_business_days: StrictInt | None = None


class V360(_PayloadModel):
    """Link to the 360-degree viewer."""

    url: StrictStr | None = None


class Diamond(_PayloadModel):
    """The stone: `id` is the stone id used to deduplicate and to hold."""

    id: StrictStr = Field(min_length=1)
    availability: StrictStr | None = None
    hold_id: StrictStr | None = Field(default=None, alias="HoldId")
    image: StrictStr | None = None
    video: StrictStr | None = None
    supplier_video_link: StrictStr | None = None
    supplier_stock_id: StrictStr | None = Field(default=None, alias="supplierStockId")
    nivoda_stock_id: StrictStr | None = Field(default=None, alias="NivodaStockId")
    eye_clean: Any = Field(default=None, alias="eyeClean")
    brown: Any = None
    green: Any = None
    milky: Any = None
    mine_of_origin: StrictStr | None = None
    v360: V360 | None = None
    delivery_time: DeliveryTime | None = None
    supplier: Supplier | None = None
    certificate: Certificate


class Offer(_PayloadModel):
    """One search result: `id` is the offer id, `DIAMOND/<uuid>`."""

    id: StrictStr = Field(min_length=1)
    price: StrictInt = Field(gt=0, description="Price in cents.")
    discount: Any = None
    markup_price: StrictInt | None = None
    diamond_price: StrictInt | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    diamond: Diamond
