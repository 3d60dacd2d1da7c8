"""Map one raw Nivoda search item to a row of the `diamonds` table.

`map_offer` runs for every stone of a consolidation, about a million times a
run. So it reads the payload with plain dict access and explicit type checks
instead of validating the pydantic models in `shared.nivoda.models`, and the
tests check that both agree. Numbers are read as exact `Decimal`s from their
JSON text, and money stays in integer cents.

Normalisation rules:

- Shape: upper case, spaces collapsed, trade abbreviations expanded (RD,
  PS, ...). A shape outside `KNOWN_SHAPES` raises `MappingError`, because
  searches and pricing rules filter on shape.
- Colour and clarity: upper case. Cut, polish and symmetry: upper case with
  the usual abbreviations expanded (EX to EXCELLENT, VG to VERY GOOD, ...).
- Fluorescence: NONE, FAINT, MEDIUM, STRONG or VERY STRONG, lab synonyms
  folded in (SLIGHT to FAINT, NEGLIGIBLE to NONE, ...). An unknown value
  maps to None with the raw text kept in `attributes["fluorescence_raw"]`,
  because fluorescence is a secondary grade and not worth losing the stone.
- Availability: the whole value, case-insensitive, never a substring:
  AVAILABLE, ON_HOLD or HOLD, SOLD. Anything else, MEMO and a missing value
  included, is "unavailable" for sale.
- Empty strings count as missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, NoReturn

from shared.json_codec import OversizedInteger


class MappingError(ValueError):
    """A payload that cannot become a `diamonds` row.

    `reason` names the field and the value at fault.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DiamondRecord(NamedTuple):
    """One `diamonds` row before pricing, fields in the table's column order."""

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
    fluorescence_color: str | None
    lab_grown: bool
    treated: bool
    feed_price_cents: int
    feed_price_per_carat_cents: int
    availability: str
    raw_availability: str
    hold_id: str | None
    image_url: str | None
    video_url: str | None
    v360_url: str | None
    certificate_lab: str | None
    certificate_number: str
    certificate_pdf_url: str | None
    depth_percent: Decimal | None
    table_percent: Decimal | None
    length_width_ratio: Decimal | None
    measurements: dict[str, Any]
    attributes: dict[str, Any]
    supplier_name: str | None
    delivery_days_min: int | None
    delivery_days_max: int | None
    source_updated_at: datetime | None


DIAMOND_RECORD_COLUMNS: tuple[str, ...] = DiamondRecord._fields

KNOWN_SHAPES = frozenset(
    {
        "ROUND",
        "OVAL",
        "PRINCESS",
        "CUSHION",
        "CUSHION MODIFIED",
        "CUSHION BRILLIANT",
        "EMERALD",
        "SQUARE EMERALD",
        "PEAR",
        "MARQUISE",
        "RADIANT",
        "SQUARE RADIANT",
        "ASSCHER",
        "HEART",
        "BAGUETTE",
        "TAPERED BAGUETTE",
        "TRILLIANT",
        "TRIANGLE",
        "OLD MINER",
        "EUROPEAN",
        "ROSE",
        "BRIOLETTE",
        "HALF MOON",
        "KITE",
        "SHIELD",
        "TRAPEZOID",
        "HEXAGONAL",
        "OCTAGONAL",
        "PENTAGONAL",
        "LOZENGE",
        "BULLET",
        "STAR",
    }
)
SHAPE_ALIASES = {
    "RD": "ROUND",
    "BR": "ROUND",
    "RB": "ROUND",
    "ROUND BRILLIANT": "ROUND",
    "OV": "OVAL",
    "PR": "PRINCESS",
    "PRN": "PRINCESS",
    "CU": "CUSHION",
    "CB": "CUSHION BRILLIANT",
    "CMB": "CUSHION MODIFIED",
    "EM": "EMERALD",
    "SQEM": "SQUARE EMERALD",
    "PS": "PEAR",
    "MQ": "MARQUISE",
    "RAD": "RADIANT",
    "RA": "RADIANT",
    "AS": "ASSCHER",
    "ASCHER": "ASSCHER",
    "HS": "HEART",
    "HT": "HEART",
    "BG": "BAGUETTE",
    "TB": "TAPERED BAGUETTE",
    "TRI": "TRILLIANT",
    "TRILLION": "TRILLIANT",
    "OLD MINE": "OLD MINER",
    "OLD EUROPEAN": "EUROPEAN",
}
FINISH_ALIASES = {
    "ID": "IDEAL",
    "EX": "EXCELLENT",
    "EXC": "EXCELLENT",
    "VG": "VERY GOOD",
    "G": "GOOD",
    "GD": "GOOD",
    "F": "FAIR",
    "FR": "FAIR",
    "P": "POOR",
    "PR": "POOR",
}
FLUORESCENCE_GRADES = {
    "NONE": "NONE",
    "NON": "NONE",
    "N": "NONE",
    "NIL": "NONE",
    "NEGLIGIBLE": "NONE",
    "FAINT": "FAINT",
    "FNT": "FAINT",
    "F": "FAINT",
    "SLIGHT": "FAINT",
    "VERY SLIGHT": "FAINT",
    "MEDIUM": "MEDIUM",
    "MED": "MEDIUM",
    "M": "MEDIUM",
    "STRONG": "STRONG",
    "STG": "STRONG",
    "S": "STRONG",
    "VERY STRONG": "VERY STRONG",
    "VST": "VERY STRONG",
    "VSTG": "VERY STRONG",
    "VS": "VERY STRONG",
}
AVAILABILITY_VALUES = {
    "AVAILABLE": "available",
    "ON_HOLD": "on_hold",
    "HOLD": "on_hold",
    "SOLD": "sold",
}

# Bounds that keep a value inside its column type (numeric(8, 3) for carats,
# numeric(6, 2) for percentages, numeric(6, 3) for the ratio), so that one
# bad payload fails alone instead of failing the whole insert batch.
MAX_CARATS = Decimal(99999)
MAX_PERCENT = Decimal(100)
MAX_RATIO_THOUSANDTHS = 999_999

_ZERO = Decimal(0)
_CACHE_LIMIT = 65_536
_new_tuple = tuple.__new__


class _Number(NamedTuple):
    """A JSON number read exactly: as Decimal, as text and as a fraction."""

    decimal: Decimal
    text: str
    numerator: int
    denominator: int


# Caches of parsed values. A feed repeats few distinct carat weights,
# measurements and grade spellings, and Decimal(str(float)) costs several dict
# look-ups. Each cache stops growing at _CACHE_LIMIT entries. Threads that
# race on an entry only compute it twice.
_numbers: dict[float | int, _Number] = {}
_ratios: dict[int, Decimal] = {}
_shapes: dict[str, str] = {}
_upper_grades: dict[str, str | None] = {}
_finish_grades: dict[str, str | None] = {}
_availabilities: dict[str, str] = {}


def map_offer(payload: dict[str, Any], feed: str) -> DiamondRecord:
    """Map one raw search item to a `DiamondRecord`, or raise `MappingError`."""
    if type(payload) is not dict:
        raise MappingError(f"payload is {type(payload).__name__}, expected an object")
    diamond = payload.get("diamond")
    if type(diamond) is not dict:
        raise MappingError(_missing_or_wrong("diamond", diamond, "an object"))
    certificate = diamond.get("certificate")
    if type(certificate) is not dict:
        raise MappingError(
            _missing_or_wrong("diamond.certificate", certificate, "an object")
        )
    stone = diamond.get
    cert = certificate.get

    # The common case is checked inline with type(), because isinstance()
    # takes True for an int. The helpers in each branch raise the precise error.
    stone_id = stone("id")
    if type(stone_id) is not str or not stone_id:
        _raise_not_text(stone_id, "diamond.id")
    offer_id = payload.get("id")
    if type(offer_id) is not str or not offer_id:
        _raise_not_text(offer_id, "id")
    certificate_number = _certificate_number(cert("certNumber"))
    price_cents = payload.get("price")
    if type(price_cents) is not int or price_cents <= 0:
        _raise_bad_price(price_cents)
    lab_grown = cert("labgrown")
    if type(lab_grown) is not bool:
        _raise_bad_flag(lab_grown, "certificate.labgrown")
    treated = cert("treated")
    if type(treated) is not bool:
        treated = _optional_flag(treated, "certificate.treated")

    carats = _carats(cert("carats"))
    # price / carats rounded half up in exact integers, with carats as a fraction.
    feed_price_per_carat_cents = (
        2 * price_cents * carats.denominator + carats.numerator
    ) // (2 * carats.numerator)
    length = _number(cert("length"), "certificate.length")
    width = _number(cert("width"), "certificate.width")

    raw_availability, availability = _availability(stone("availability"))
    fluorescence_raw = _optional_text(cert("floInt"), "certificate.floInt")
    fluorescence = _fluorescence(fluorescence_raw)
    attributes = _attributes(payload, diamond, certificate)
    if fluorescence is None and fluorescence_raw is not None:
        attributes["fluorescence_raw"] = fluorescence_raw
    delivery_days_min, delivery_days_max = _delivery_days(stone("delivery_time"))

    # tuple.__new__ skips the NamedTuple's generated keyword __new__, which
    # took roughly a tenth of the mapping time when measured. The values
    # follow DIAMOND_RECORD_COLUMNS, and a test checks every field by name.
    return _new_tuple(
        DiamondRecord,
        (
            feed,
            stone_id,
            offer_id,
            _shape(cert("shape")),
            carats.decimal,
            _upper(cert("color"), "certificate.color"),
            _upper(cert("clarity"), "certificate.clarity"),
            _finish(cert("cut"), "certificate.cut"),
            _finish(cert("polish"), "certificate.polish"),
            _finish(cert("symmetry"), "certificate.symmetry"),
            fluorescence,
            _upper(cert("floCol"), "certificate.floCol"),
            lab_grown,
            treated,
            price_cents,
            feed_price_per_carat_cents,
            availability,
            raw_availability,
            _optional_text(stone("HoldId"), "diamond.HoldId"),
            _optional_text(stone("image"), "diamond.image"),
            _video_url(stone),
            _v360_url(stone("v360")),
            _upper(cert("lab"), "certificate.lab"),
            certificate_number,
            _optional_text(cert("pdfUrl"), "certificate.pdfUrl"),
            _percent(cert("depthPercentage"), "certificate.depthPercentage"),
            _percent(cert("table"), "certificate.table"),
            _length_width_ratio(length, width),
            _measurements(cert, length, width),
            attributes,
            _supplier_name(stone("supplier")),
            delivery_days_min,
            delivery_days_max,
            _updated_at(payload.get("updatedAt")),
        ),
    )


# Identity, money and numbers


def _missing_or_wrong(field: str, value: Any, expected: str) -> str:
    if value is None:
        return f"{field} is missing"
    if type(value) is OversizedInteger:
        return f"{field} is {value.describe()}, expected {expected}"
    return f"{field} is {type(value).__name__} {_preview(value)}, expected {expected}"


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raise_not_text(value: Any, field: str) -> NoReturn:
    if value == "":
        raise MappingError(f"{field} is empty")
    raise MappingError(_missing_or_wrong(field, value, "a non-empty string"))


def _certificate_number(value: Any) -> str:
    if type(value) is str:
        number = value.strip()
        if number:
            return number
        raise MappingError("certificate.certNumber is empty")
    # Most labs number certificates with digits, so a JSON integer is accepted.
    if type(value) is int:
        return str(value)
    raise MappingError(
        _missing_or_wrong("certificate.certNumber", value, "a non-empty string")
    )


def _raise_bad_price(value: Any) -> NoReturn:
    if type(value) is not int:
        raise MappingError(_missing_or_wrong("price", value, "an integer of cents"))
    raise MappingError(f"price is {value} cents, expected more than 0")


def _number(value: Any, field: str) -> _Number | None:
    kind = type(value)
    if kind is float or kind is int:
        number = _numbers.get(value)
        if number is None:
            number = _parse_number(value, field)
        return number
    if value is None:
        return None
    raise MappingError(_missing_or_wrong(field, value, "a JSON number"))


def _parse_number(value: float, field: str) -> _Number:
    # str() of a float is the shortest text that reads back as the same
    # float: the text of the JSON number (0.3, not 0.2999...).
    decimal = Decimal(str(value))
    if not decimal.is_finite():
        raise MappingError(f"{field} is {value!r}, expected a finite number")
    numerator, denominator = decimal.as_integer_ratio()
    number = _Number(decimal, str(decimal), numerator, denominator)
    if len(_numbers) < _CACHE_LIMIT:
        _numbers[value] = number
    return number


def _carats(value: Any) -> _Number:
    carats = _number(value, "certificate.carats")
    if carats is None:
        raise MappingError("certificate.carats is missing")
    if carats.numerator <= 0 or carats.decimal > MAX_CARATS:
        raise MappingError(
            f"certificate.carats is {value!r}, expected more than 0 and at most "
            f"{MAX_CARATS}"
        )
    return carats


def _percent(value: Any, field: str) -> Decimal | None:
    number = _number(value, field)
    # Some feeds send 0 for an unmeasured proportion.
    if number is None or number.numerator == 0:
        return None
    if number.numerator < 0 or number.decimal > MAX_PERCENT:
        raise MappingError(f"{field} is {value!r}, expected 0 to {MAX_PERCENT}")
    return number.decimal


def _length_width_ratio(
    length: _Number | None, width: _Number | None
) -> Decimal | None:
    if length is None or width is None:
        return None
    if length.numerator <= 0 or width.numerator <= 0:
        return None
    # length / width in thousandths, rounded half up, in exact integers.
    numerator = 1000 * length.numerator * width.denominator
    denominator = length.denominator * width.numerator
    thousandths = (2 * numerator + denominator) // (2 * denominator)
    # A ratio that does not fit numeric(6, 3) comes from a bad measurement.
    if thousandths == 0 or thousandths > MAX_RATIO_THOUSANDTHS:
        return None
    ratio = _ratios.get(thousandths)
    if ratio is None:
        ratio = Decimal(thousandths).scaleb(-3)
        if len(_ratios) < _CACHE_LIMIT:
            _ratios[thousandths] = ratio
    return ratio


def _measurement_text(value: Any, field: str) -> str | None:
    if type(value) is float:
        number = _numbers.get(value)
        if number is not None:
            return number.text
    number = _number(value, field)
    return None if number is None else number.text


def _measurements(
    cert: Callable[[str], Any], length: _Number | None, width: _Number | None
) -> dict[str, Any]:
    return {
        "length": None if length is None else length.text,
        "width": None if width is None else width.text,
        "depth": _measurement_text(cert("depth"), "certificate.depth"),
        "crown_angle": _measurement_text(cert("crownAngle"), "certificate.crownAngle"),
        "crown_height": _measurement_text(
            cert("crownHeight"), "certificate.crownHeight"
        ),
        "pavilion_angle": _measurement_text(cert("pavAngle"), "certificate.pavAngle"),
        "pavilion_depth": _measurement_text(cert("pavDepth"), "certificate.pavDepth"),
        "girdle": _optional_text(cert("girdle"), "certificate.girdle"),
        "culet_size": _optional_text(cert("culetSize"), "certificate.culetSize"),
    }


# Grades and flags


def _shape(value: Any) -> str:
    try:
        return _shapes[value]
    except (KeyError, TypeError):
        pass
    if type(value) is not str or not value.strip():
        raise MappingError(_missing_or_wrong("certificate.shape", value, "a shape"))

    key = " ".join(value.replace("_", " ").replace("-", " ").upper().split())
    shape = SHAPE_ALIASES.get(key, key)
    if shape not in KNOWN_SHAPES:
        raise MappingError(
            f"certificate.shape {value!r} is not a known shape; add it to "
            "KNOWN_SHAPES or SHAPE_ALIASES in shared/mapping.py if it is valid"
        )
    if len(_shapes) < _CACHE_LIMIT:
        _shapes[value] = shape
    return shape


def _upper(value: Any, field: str) -> str | None:
    try:
        return _upper_grades[value]
    except (KeyError, TypeError):
        pass
    if value is None:
        return None
    if type(value) is not str:
        raise MappingError(_missing_or_wrong(field, value, "a string"))
    grade = " ".join(value.upper().split()) or None
    if len(_upper_grades) < _CACHE_LIMIT:
        _upper_grades[value] = grade
    return grade


def _finish(value: Any, field: str) -> str | None:
    try:
        return _finish_grades[value]
    except (KeyError, TypeError):
        pass
    if value is None:
        return None
    if type(value) is not str:
        raise MappingError(_missing_or_wrong(field, value, "a string"))
    key = " ".join(value.replace("_", " ").upper().split())
    grade = FINISH_ALIASES.get(key, key) or None
    if len(_finish_grades) < _CACHE_LIMIT:
        _finish_grades[value] = grade
    return grade


def _fluorescence(raw: str | None) -> str | None:
    if raw is None:
        return None
    grade = FLUORESCENCE_GRADES.get(raw)
    if grade is None:
        key = " ".join(raw.replace("_", " ").upper().split())
        grade = FLUORESCENCE_GRADES.get(key)
    return grade


def _availability(value: Any) -> tuple[str, str]:
    try:
        return value, _availabilities[value]
    except (KeyError, TypeError):
        pass
    if value is None:
        return "", "unavailable"
    if type(value) is not str:
        raise MappingError(_missing_or_wrong("diamond.availability", value, "a string"))
    # The whole value decides: "UNAVAILABLE" contains "AVAILABLE" but is not it.
    availability = AVAILABILITY_VALUES.get(value.strip().upper(), "unavailable")
    if len(_availabilities) < _CACHE_LIMIT:
        _availabilities[value] = availability
    return value, availability


def _raise_bad_flag(value: Any, field: str) -> NoReturn:
    raise MappingError(_missing_or_wrong(field, value, "true or false"))


def _optional_flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    _raise_bad_flag(value, field)


# Media


def _optional_text(value: Any, field: str) -> str | None:
    if type(value) is str:
        return value or None
    if value is None:
        return None
    raise MappingError(_missing_or_wrong(field, value, "a string"))


def _video_url(stone: Callable[[str], Any]) -> str | None:
    video = _optional_text(stone("video"), "diamond.video")
    if video is not None:
        return video
    return _optional_text(stone("supplier_video_link"), "diamond.supplier_video_link")


def _v360_url(v360: Any) -> str | None:
    if v360 is None:
        return None
    if type(v360) is not dict:
        raise MappingError(_missing_or_wrong("diamond.v360", v360, "an object"))
    return _optional_text(v360.get("url"), "diamond.v360.url")


# Supplier, delivery and other attributes


def _supplier_name(supplier: Any) -> str | None:
    if supplier is None:
        return None
    if type(supplier) is not dict:
        raise MappingError(_missing_or_wrong("diamond.supplier", supplier, "an object"))
    return _optional_text(supplier.get("name"), "diamond.supplier.name")


def _delivery_days(delivery: Any) -> tuple[int | None, int | None]:
    if delivery is None:
        return None, None
    if type(delivery) is not dict:
        raise MappingError(
            _missing_or_wrong("diamond.delivery_time", delivery, "an object")
        )
    low = delivery.get("min_business_days")
    high = delivery.get("max_business_days")
    for field, days in (("min_business_days", low), ("max_business_days", high)):
        if days is not None and (type(days) is not int or days < 0):
            raise MappingError(
                f"diamond.delivery_time.{field} is {_preview(days)}, expected an "
                "integer >= 0"
            )
    return low, high


def _attributes(
    payload: dict[str, Any], diamond: dict[str, Any], certificate: dict[str, Any]
) -> dict[str, Any]:
    # Values are copied from the parsed JSON, so they stay JSON-safe. The
    # raw payload keeps every other field.
    stone = diamond.get
    cert = certificate.get
    supplier = stone("supplier")
    return {
        "eye_clean": stone("eyeClean"),
        "brown": stone("brown"),
        "green": stone("green"),
        "milky": stone("milky"),
        "mine_of_origin": stone("mine_of_origin"),
        "supplier_stock_id": stone("supplierStockId"),
        "nivoda_stock_id": stone("NivodaStockId"),
        "f_color": cert("f_color"),
        "f_intensity": cert("f_intensity"),
        "f_overtone": cert("f_overtone"),
        "delivery_time": stone("delivery_time"),
        "supplier_id": supplier.get("id") if type(supplier) is dict else None,
        "discount": payload.get("discount"),
    }


def _updated_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if type(value) is not str:
        raise MappingError(_missing_or_wrong("updatedAt", value, "an ISO date-time"))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MappingError(
            f"updatedAt {_preview(value)} is not an ISO 8601 date-time"
        ) from None
    if moment.tzinfo is None:
        raise MappingError(f"updatedAt {_preview(value)} has no time zone")
    return moment


def replace_nul(value):
    """Return `value` with every NUL character in its strings turned into U+FFFD.

    PostgreSQL text and jsonb cannot store NUL, which JSON may carry as an
    escape.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {replace_nul(key): replace_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [replace_nul(item) for item in value]
    return value


# NUL and the UTF-16 surrogates, which json.loads returns for an escape such
# as \ud800 that is not part of a pair.
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def replace_unstorable_characters(value):
    """Return `value` with NUL and surrogates in its strings turned into U+FFFD.

    PostgreSQL text and jsonb store neither, and psycopg cannot encode a lone
    surrogate as UTF-8. Keys of objects are replaced too.
    """
    if isinstance(value, str):
        return _UNSTORABLE_CHARACTERS.sub("\ufffd", value)
    if isinstance(value, dict):
        return {
            replace_unstorable_characters(key): replace_unstorable_characters(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [replace_unstorable_characters(item) for item in value]
    return value
