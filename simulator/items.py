"""Item JSON of the supplier API, built from one stone of the catalogue."""

import dataclasses
import functools
import math
from datetime import UTC, datetime

import numpy as np

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
    (
        "7a2d3e0f-9b5c-4d2f-8a4b-2c3d4e5f6071",
        "Mumbai Brilliants",
        "Mumbai Brilliants Pvt Ltd",
    ),
    ("8b3e4f1a-0c6d-4e3a-9b5c-3d4e5f607182", "Tel Aviv Gems", "Tel Aviv Gems Ltd"),
    (
        "9c4f5a2b-1d7e-4f4b-8c6d-4e5f60718293",
        "New York Stone House",
        "NY Stone House LLC",
    ),
    ("0d5a6b3c-2e8f-4a5c-9d7e-5f60718293a4", "Surat Lab Grown", "Surat Lab Grown LLP"),
)
GIRDLES = ("THIN TO MEDIUM", "MEDIUM", "MEDIUM TO SLIGHTLY THICK", "SLIGHTLY THICK")
ORIGINS = ("Botswana", "Canada", "Russia", "South Africa", "Namibia", "Australia")
EYE_CLEAN_CLARITY_LIMIT = CLARITIES.index("VS2")
CERT_NUMBER_BASE = {"GIA": 2_200_000_000, "IGI": 500_000_000, "HRD": 190_000_000_000}
# XOR masks on the high half of a stone id that derive the ids of its
# certificate and of its generated hold. They leave the version bits alone.
CERTIFICATE_ID_MASK = 0x5A5A_5A5A_5A5A_0A5A
HOLD_ID_MASK = 0x3C3C_3C3C_3C3C_0C3C
ROW_FIELDS = tuple(
    field.name for field in dataclasses.fields(StoneColumns) if field.name != "listed"
)
FLUORESCENCE_COLOR = "BLUE"


@functools.lru_cache(maxsize=65_536)
def format_timestamp(milliseconds: int) -> str:
    """Format Unix milliseconds as ISO 8601 UTC with a `Z` suffix."""
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    if milliseconds % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def uuid_text(high: int, low: int) -> str:
    """Return the UUID text of a 128-bit value split into two 64-bit halves."""
    digits = f"{int(high):016x}{int(low):016x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def stone_id(columns: StoneColumns, position: int) -> str:
    """Return the stone id (`diamond.id`) of the stone at `position`."""
    return uuid_text(columns.stone_hi[position], columns.stone_lo[position])


def offer_id(columns: StoneColumns, position: int) -> str:
    """Return the offer id (`DIAMOND/<uuid>`) of the stone at `position`."""
    return "DIAMOND/" + uuid_text(
        columns.offer_hi[position], columns.offer_lo[position]
    )


def cert_number(columns: StoneColumns, position: int) -> str:
    """Return the certificate number of the stone at `position`."""
    return _cert_number(LABS[columns.lab[position]], int(columns.serial[position]))


def _cert_number(lab: str, serial: int) -> str:
    # Unique because serials are unique and the lab ranges do not overlap
    # below 1.7 billion stones.
    return str(CERT_NUMBER_BASE[lab] + serial)


def build_item(columns: StoneColumns, position: int, hold_id: str | None) -> dict:
    """Build the item JSON of the stone at `position`."""
    return build_items(columns, [position], {position: hold_id} if hold_id else {})[0]


def build_items(
    columns: StoneColumns, positions, hold_ids: dict[int, str]
) -> list[dict]:
    """Build the item JSON of the stones at `positions`.

    Column values are taken for all positions at once and converted to Python
    values in bulk, which is several times faster than per-stone indexing.
    """
    positions = np.asarray(positions, dtype=np.int64)
    values = {name: getattr(columns, name)[positions].tolist() for name in ROW_FIELDS}
    built = []
    for index, position in enumerate(positions.tolist()):
        row = {name: column[index] for name, column in values.items()}
        built.append(_build_item(row, hold_ids.get(position)))
    return built


def _build_item(row: dict, hold_id: str | None) -> dict:
    diamond_id = uuid_text(row["stone_hi"], row["stone_lo"])
    price_cents = row["price_cents"]
    discount = row["discount"]
    return {
        "id": "DIAMOND/" + uuid_text(row["offer_hi"], row["offer_lo"]),
        "price": price_cents,
        "discount": None if math.isnan(discount) else discount,
        "markup_price": price_cents,
        "diamond_price": price_cents,
        "createdAt": format_timestamp(row["created_ms"]),
        "updatedAt": format_timestamp(row["updated_ms"]),
        "diamond": _build_diamond(row, diamond_id, hold_id),
    }


def _build_diamond(row: dict, diamond_id: str, hold_id: str | None) -> dict:
    aux = row["aux"]
    availability = row["availability"]
    if hold_id is None and availability == ON_HOLD:
        # Stones generated on hold carry a stable hold id of their own.
        hold_id = uuid_text(row["stone_hi"] ^ HOLD_ID_MASK, row["stone_lo"])
    supplier = row["supplier"]
    supplier_id, supplier_name, legal_name = SUPPLIERS[supplier]
    serial = row["serial"]
    min_days = 2 + supplier

    return {
        "id": diamond_id,
        "availability": AVAILABILITIES[availability],
        "HoldId": hold_id,
        "image": _media_url(row["has_image"], f"images/{diamond_id}.jpg"),
        "video": _media_url(row["has_video"], f"videos/{diamond_id}.mp4"),
        "supplier_video_link": None,
        "supplierStockId": f"SUP{supplier}-{serial:08d}",
        "NivodaStockId": f"NV{serial:09d}",
        "eyeClean": _eye_clean(row["clarity"], aux),
        "brown": "NONE" if aux & 0x3 == 0 else None,
        "green": "NONE" if aux & 0x3 == 0 else None,
        "milky": "NONE" if aux & 0xC == 0 else None,
        "mine_of_origin": _mine_of_origin(row["labgrown"], aux),
        "v360": _v360(row["has_v360"], diamond_id),
        "delivery_time": {
            "min_business_days": min_days,
            "max_business_days": min_days + 3,
        },
        "supplier": {
            "id": supplier_id,
            "name": supplier_name,
            "legal_name": legal_name,
        },
        "certificate": _build_certificate(row, aux),
    }


def _build_certificate(row: dict, aux: int) -> dict:
    lab = LABS[row["lab"]]
    number = _cert_number(lab, row["serial"])
    fluorescence = FLUORESCENCE[row["fluorescence"]]
    return {
        "id": uuid_text(row["stone_hi"] ^ CERTIFICATE_ID_MASK, row["stone_lo"]),
        "lab": lab,
        "certNumber": number,
        "pdfUrl": f"{MEDIA_BASE_URL}/certificates/{lab.lower()}/{number}.pdf",
        "shape": SHAPES[row["shape"]],
        "carats": row["carat"],
        "color": COLORS[row["color"]],
        "clarity": CLARITIES[row["clarity"]],
        "cut": CUTS[row["cut"]],
        "polish": FINISH_GRADES[row["polish"]],
        "symmetry": FINISH_GRADES[row["symmetry"]],
        "floInt": fluorescence,
        "floCol": None if fluorescence == "NONE" else FLUORESCENCE_COLOR,
        "length": row["length"],
        "width": row["width"],
        "depth": row["depth"],
        "depthPercentage": row["depth_percentage"],
        "table": row["table"],
        "crownAngle": round(31.0 + (aux >> 4 & 0x3F) / 12.6, 1),
        "crownHeight": round(12.0 + (aux >> 10 & 0x3F) / 15.75, 1),
        "pavAngle": round(40.6 + (aux >> 16 & 0xF) / 25.0, 1),
        "pavDepth": round(42.0 + (aux >> 20 & 0x1F) / 15.5, 1),
        "girdle": GIRDLES[aux >> 25 & 0x3],
        "culetSize": "NONE",
        "labgrown": row["labgrown"],
        "treated": False,
        "f_color": None,
        "f_intensity": None,
        "f_overtone": None,
    }


def _media_url(present: bool, path: str) -> str | None:
    return f"{MEDIA_BASE_URL}/{path}" if present else None


def _v360(present: bool, diamond_id: str) -> dict | None:
    if not present:
        return None
    return {"url": f"{MEDIA_BASE_URL}/v360/{diamond_id}/index.html"}


def _eye_clean(clarity: int, aux: int) -> bool | None:
    if aux >> 27 & 0x7 == 0:
        return None
    return clarity <= EYE_CLEAN_CLARITY_LIMIT


def _mine_of_origin(labgrown: bool, aux: int) -> str | None:
    if labgrown or aux >> 30 != 0:
        return None
    return ORIGINS[aux % len(ORIGINS)]
