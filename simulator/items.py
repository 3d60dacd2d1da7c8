"""Item JSON of the supplier API, built from one stone of the catalogue."""

import math
import uuid
from datetime import UTC, datetime

from simulator.generation import (
    AVAILABILITIES,
    CLARITIES,
    COLORS,
    CUTS,
    FINISH_GRADES,
    FLUORESCENCE,
    LABS,
    ON_HOLD,
    SHAPES,
    StoneColumns,
)

MEDIA_BASE_URL = "https://media.example.test"
SUPPLIERS = (
    ("6f1c2d9e-8a4b-4c1e-9f3a-1b2c3d4e5f60", "Antwerp Rough Co", "Antwerp Rough Co BV"),
    ("7a2d3e0f-9b5c-4d2f-8a4b-2c3d4e5f6071", "Mumbai Brilliants", "Mumbai Brilliants Pvt Ltd"),
    ("8b3e4f1a-0c6d-4e3a-9b5c-3d4e5f607182", "Tel Aviv Gems", "Tel Aviv Gems Ltd"),
    ("9c4f5a2b-1d7e-4f4b-8c6d-4e5f60718293", "New York Stone House", "NY Stone House LLC"),
    ("0d5a6b3c-2e8f-4a5c-9d7e-5f60718293a4", "Surat Lab Grown", "Surat Lab Grown LLP"),
)
GIRDLES = ("THIN TO MEDIUM", "MEDIUM", "MEDIUM TO SLIGHTLY THICK", "SLIGHTLY THICK")
ORIGINS = ("Botswana", "Canada", "Russia", "South Africa", "Namibia", "Australia")
EYE_CLEAN_CLARITY_LIMIT = CLARITIES.index("VS2")
DERIVED_ID_NAMESPACE = uuid.UUID("3f0b8f5e-2a6c-4e7d-9b1a-5c4d3e2f1a0b")
FLUORESCENCE_COLOR = "BLUE"


def format_timestamp(milliseconds: int) -> str:
    """Format Unix milliseconds as ISO 8601 UTC with a `Z` suffix."""
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    if milliseconds % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def uuid_text(high, low) -> str:
    """Return the UUID text of a 128-bit value split into two 64-bit halves."""
    return str(uuid.UUID(int=(int(high) << 64) | int(low)))


def stone_id(columns: StoneColumns, position: int) -> str:
    """Return the stone id (`diamond.id`) of the stone at `position`."""
    return uuid_text(columns.stone_hi[position], columns.stone_lo[position])


def offer_id(columns: StoneColumns, position: int) -> str:
    """Return the offer id (`DIAMOND/<uuid>`) of the stone at `position`."""
    return "DIAMOND/" + uuid_text(columns.offer_hi[position], columns.offer_lo[position])


def derived_id(kind: str, base: str) -> str:
    """Return a stable UUID for a secondary record (hold, certificate) of a stone."""
    return str(uuid.uuid5(DERIVED_ID_NAMESPACE, f"{kind}:{base}"))


def cert_number(columns: StoneColumns, position: int) -> str:
    """Return the certificate number, unique because the serial is unique."""
    serial = int(columns.serial[position])
    lab = LABS[columns.lab[position]]
    base = {"GIA": 2_200_000_000, "IGI": 500_000_000, "HRD": 190_000_000_000}[lab]
    return str(base + serial)


def build_item(columns: StoneColumns, position: int, hold_id: str | None) -> dict:
    """Build the item JSON of the stone at `position`."""
    diamond_id = stone_id(columns, position)
    price_cents = int(columns.price_cents[position])
    discount = float(columns.discount[position])
    return {
        "id": offer_id(columns, position),
        "price": price_cents,
        "discount": None if math.isnan(discount) else discount,
        "markup_price": price_cents,
        "diamond_price": price_cents,
        "createdAt": format_timestamp(int(columns.created_ms[position])),
        "updatedAt": format_timestamp(int(columns.updated_ms[position])),
        "diamond": _build_diamond(columns, position, diamond_id, hold_id),
    }


def _build_diamond(
    columns: StoneColumns, position: int, diamond_id: str, hold_id: str | None
) -> dict:
    aux = int(columns.aux[position])
    availability = int(columns.availability[position])
    if hold_id is None and availability == ON_HOLD:
        hold_id = derived_id("hold", diamond_id)
    supplier_id, supplier_name, legal_name = SUPPLIERS[columns.supplier[position]]
    serial = int(columns.serial[position])
    min_days = 2 + int(columns.supplier[position])

    return {
        "id": diamond_id,
        "availability": AVAILABILITIES[availability],
        "HoldId": hold_id,
        "image": _media_url(columns.has_image[position], f"images/{diamond_id}.jpg"),
        "video": _media_url(columns.has_video[position], f"videos/{diamond_id}.mp4"),
        "supplier_video_link": None,
        "supplierStockId": f"SUP{int(columns.supplier[position])}-{serial:08d}",
        "NivodaStockId": f"NV{serial:09d}",
        "eyeClean": _eye_clean(columns, position, aux),
        "brown": "NONE" if aux & 0x3 == 0 else None,
        "green": "NONE" if aux & 0x3 == 0 else None,
        "milky": "NONE" if aux & 0xC == 0 else None,
        "mine_of_origin": _mine_of_origin(columns, position, aux),
        "v360": _v360(columns, position, diamond_id),
        "delivery_time": {"min_business_days": min_days, "max_business_days": min_days + 3},
        "supplier": {"id": supplier_id, "name": supplier_name, "legal_name": legal_name},
        "certificate": _build_certificate(columns, position, diamond_id, aux),
    }


def _build_certificate(
    columns: StoneColumns, position: int, diamond_id: str, aux: int
) -> dict:
    lab = LABS[columns.lab[position]]
    number = cert_number(columns, position)
    fluorescence = FLUORESCENCE[columns.fluorescence[position]]
    return {
        "id": derived_id("certificate", diamond_id),
        "lab": lab,
        "certNumber": number,
        "pdfUrl": f"{MEDIA_BASE_URL}/certificates/{lab.lower()}/{number}.pdf",
        "shape": SHAPES[columns.shape[position]],
        "carats": float(columns.carat[position]),
        "color": COLORS[columns.color[position]],
        "clarity": CLARITIES[columns.clarity[position]],
        "cut": CUTS[columns.cut[position]],
        "polish": FINISH_GRADES[columns.polish[position]],
        "symmetry": FINISH_GRADES[columns.symmetry[position]],
        "floInt": fluorescence,
        "floCol": None if fluorescence == "NONE" else FLUORESCENCE_COLOR,
        "length": float(columns.length[position]),
        "width": float(columns.width[position]),
        "depth": float(columns.depth[position]),
        "depthPercentage": float(columns.depth_percentage[position]),
        "table": float(columns.table[position]),
        "crownAngle": round(31.0 + (aux >> 4 & 0x3F) / 12.6, 1),
        "crownHeight": round(12.0 + (aux >> 10 & 0x3F) / 15.75, 1),
        "pavAngle": round(40.6 + (aux >> 16 & 0xF) / 25.0, 1),
        "pavDepth": round(42.0 + (aux >> 20 & 0x1F) / 15.5, 1),
        "girdle": GIRDLES[aux >> 25 & 0x3],
        "culetSize": "NONE",
        "labgrown": bool(columns.labgrown[position]),
        "treated": False,
        "f_color": None,
        "f_intensity": None,
        "f_overtone": None,
    }


def _media_url(present, path: str) -> str | None:
    return f"{MEDIA_BASE_URL}/{path}" if present else None


def _v360(columns: StoneColumns, position: int, diamond_id: str) -> dict | None:
    if not columns.has_v360[position]:
        return None
    return {"url": f"{MEDIA_BASE_URL}/v360/{diamond_id}/index.html"}


def _eye_clean(columns: StoneColumns, position: int, aux: int) -> bool | None:
    if aux >> 27 & 0x7 == 0:
        return None
    return bool(columns.clarity[position] <= EYE_CLEAN_CLARITY_LIMIT)


def _mine_of_origin(columns: StoneColumns, position: int, aux: int) -> str | None:
    if columns.labgrown[position] or aux >> 30 != 0:
        return None
    return ORIGINS[aux % len(ORIGINS)]
