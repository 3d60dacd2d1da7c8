"""Deterministic stone catalogue built from the ggplot2 diamonds data set.

The catalogue is a set of numpy columns, one value per stone, so that a
million stones fit in memory and can be filtered and sorted without building
a Python object per stone. Item JSON is built only for the stones of a page.

The first 53,940 stones are the real rows in file order: shape ROUND, natural
(not lab grown), price in cents equal to the row's US dollar price times 100.
Stones past that are derived from randomly chosen real rows with a perturbed
carat weight and price, a shape drawn from a fixed share table and lab grown
for about 30% of them.
"""

import csv
import dataclasses
import functools
import gzip
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

DATA_PATH = Path(__file__).with_name("data") / "diamonds.csv.gz"
REAL_STONE_COUNT = 53_940

# ggplot2 cut grades mapped to the grades the supplier API uses.
SOURCE_CUTS = {"Fair": 0, "Good": 1, "Very Good": 2, "Premium": 3, "Ideal": 4}
CUTS = ("FAIR", "GOOD", "VERY GOOD", "EXCELLENT", "IDEAL")
COLORS = ("D", "E", "F", "G", "H", "I", "J")
CLARITIES = ("IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "I1")
SHAPES = (
    "ROUND",
    "OVAL",
    "PRINCESS",
    "CUSHION",
    "EMERALD",
    "PEAR",
    "MARQUISE",
    "RADIANT",
    "ASSCHER",
    "HEART",
)
SHAPE_SHARES = (0.55, 0.09, 0.07, 0.07, 0.06, 0.05, 0.03, 0.04, 0.02, 0.02)
AVAILABILITIES = ("AVAILABLE", "ON_HOLD", "MEMO", "SOLD")
AVAILABLE, ON_HOLD, MEMO, SOLD = range(4)
INITIAL_AVAILABILITY_SHARES = (0.90, 0.07, 0.03, 0.0)
LABS = ("GIA", "IGI", "HRD")
FINISH_GRADES = ("EXCELLENT", "VERY GOOD", "GOOD", "FAIR")
FLUORESCENCE = ("NONE", "FAINT", "MEDIUM", "STRONG")

LAB_GROWN_SHARE = 0.30
MIN_CARAT, MAX_CARAT = 0.2, 5.01
MIN_PRICE_DOLLARS, MAX_PRICE_DOLLARS = 326, 18_823

# createdAt is rounded to the hour, so that many stones share one createdAt
# as they do in the supplier feed.
CREATED_FROM = datetime(2024, 1, 1, tzinfo=UTC)
CREATED_TO = datetime(2026, 10, 1, tzinfo=UTC)
MAX_UPDATE_LAG_SECONDS = 45 * 24 * 3600
HOUR_MS = 3_600_000


@dataclasses.dataclass
class StoneColumns:
    """Column arrays of a catalogue, all of the same length."""

    carat: np.ndarray
    cut: np.ndarray
    color: np.ndarray
    clarity: np.ndarray
    depth_percentage: np.ndarray
    table: np.ndarray
    length: np.ndarray
    width: np.ndarray
    depth: np.ndarray
    price_cents: np.ndarray
    shape: np.ndarray
    labgrown: np.ndarray
    created_ms: np.ndarray
    updated_ms: np.ndarray
    tie_rank: np.ndarray
    availability: np.ndarray
    listed: np.ndarray
    has_image: np.ndarray
    has_video: np.ndarray
    has_v360: np.ndarray
    supplier: np.ndarray
    lab: np.ndarray
    polish: np.ndarray
    symmetry: np.ndarray
    fluorescence: np.ndarray
    discount: np.ndarray
    stone_hi: np.ndarray
    stone_lo: np.ndarray
    offer_hi: np.ndarray
    offer_lo: np.ndarray
    serial: np.ndarray
    aux: np.ndarray

    def __len__(self) -> int:
        return len(self.carat)

    def copy(self) -> "StoneColumns":
        """Return a deep copy, so that mutations leave the original intact."""
        return StoneColumns(**{name: array.copy() for name, array in self._arrays()})

    def extend(self, other: "StoneColumns") -> None:
        """Append the stones of `other` in place."""
        for name, array in self._arrays():
            setattr(self, name, np.concatenate([array, getattr(other, name)]))

    def _arrays(self):
        for field in dataclasses.fields(self):
            yield field.name, getattr(self, field.name)


@functools.cache
def load_real_rows() -> dict[str, np.ndarray]:
    """Read the 53,940 rows of the packaged diamonds CSV into column arrays."""
    with gzip.open(DATA_PATH, "rt", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        columns = list(zip(*reader, strict=True))
    if len(columns[0]) != REAL_STONE_COUNT:
        raise ValueError(
            f"{DATA_PATH} has {len(columns[0])} rows, expected {REAL_STONE_COUNT}: "
            "restore the packaged file"
        )

    raw = dict(zip(header, columns, strict=True))
    rows = {
        name: np.array(raw[name], dtype=np.float64)
        for name in ("carat", "depth", "table", "price", "x", "y", "z")
    }
    rows["cut"] = np.array([SOURCE_CUTS[cut] for cut in raw["cut"]], dtype=np.int8)
    rows["color"] = _codes(raw["color"], COLORS)
    rows["clarity"] = _codes(raw["clarity"], CLARITIES)
    return rows


def _codes(values, vocabulary) -> np.ndarray:
    lookup = {name: code for code, name in enumerate(vocabulary)}
    return np.array([lookup[value] for value in values], dtype=np.int8)


def generate_stones(count: int, seed: int) -> StoneColumns:
    """Build `count` stones, deterministic for a given `seed`."""
    if count < 0:
        raise ValueError(f"stone count {count} is negative: pass 0 or more")
    rng = np.random.default_rng(seed)
    real = load_real_rows()

    real_count = min(count, REAL_STONE_COUNT)
    physical = _take_real_rows(real, np.arange(real_count))
    if count > REAL_STONE_COUNT:
        extra = _derive_synthetic_rows(real, rng, count - REAL_STONE_COUNT)
        physical = {
            name: np.concatenate([physical[name], extra[name]]) for name in physical
        }

    created_ms = _draw_created_ms(rng, count)
    lag_ms = rng.integers(0, MAX_UPDATE_LAG_SECONDS, count) * 1000
    updated_ms = created_ms + lag_ms
    availability = rng.choice(4, size=count, p=INITIAL_AVAILABILITY_SHARES)
    return _assemble(
        rng, physical, created_ms, updated_ms, availability, first_serial=0
    )


def generate_new_stones(
    rng: np.random.Generator, count: int, now_ms: int, first_serial: int
) -> StoneColumns:
    """Build `count` new synthetic stones created and updated at `now_ms`."""
    physical = _derive_synthetic_rows(load_real_rows(), rng, count)
    created_ms = np.full(count, now_ms, dtype=np.int64)
    availability = np.full(count, AVAILABLE, dtype=np.int8)
    return _assemble(
        rng, physical, created_ms, created_ms.copy(), availability, first_serial
    )


def _take_real_rows(
    real: dict[str, np.ndarray], rows: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "carat": real["carat"][rows],
        "cut": real["cut"][rows],
        "color": real["color"][rows],
        "clarity": real["clarity"][rows],
        "depth_percentage": real["depth"][rows],
        "table": real["table"][rows],
        "length": real["x"][rows],
        "width": real["y"][rows],
        "depth": real["z"][rows],
        "price_cents": np.rint(real["price"][rows] * 100).astype(np.int64),
        "shape": np.zeros(len(rows), dtype=np.int8),
        "labgrown": np.zeros(len(rows), dtype=bool),
    }


def _derive_synthetic_rows(
    real: dict[str, np.ndarray], rng: np.random.Generator, count: int
) -> dict[str, np.ndarray]:
    """Derive stones from random real rows, staying inside the real ranges."""
    source = rng.integers(0, REAL_STONE_COUNT, count)
    rows = _take_real_rows(real, source)

    carat = rows["carat"] * rng.uniform(0.95, 1.05, count)
    carat = np.clip(np.round(carat, 2), MIN_CARAT, MAX_CARAT)
    # Measurements scale with the cube root of the weight change.
    scale = np.cbrt(carat / rows["carat"])
    for name in ("length", "width", "depth"):
        rows[name] = np.round(rows[name] * scale, 2)
    rows["carat"] = carat

    labgrown = rng.random(count) < LAB_GROWN_SHARE
    factor = rng.uniform(0.85, 1.15, count) * np.where(labgrown, 0.45, 1.0)
    dollars = np.clip(
        real["price"][source] * factor, MIN_PRICE_DOLLARS, MAX_PRICE_DOLLARS
    )
    rows["price_cents"] = np.rint(dollars * 100).astype(np.int64)
    rows["labgrown"] = labgrown
    rows["shape"] = rng.choice(len(SHAPES), size=count, p=SHAPE_SHARES).astype(np.int8)
    return rows


def _draw_created_ms(rng: np.random.Generator, count: int) -> np.ndarray:
    start_ms = int(CREATED_FROM.timestamp() * 1000)
    hours = int((CREATED_TO - CREATED_FROM).total_seconds() // 3600)
    return start_ms + rng.integers(0, hours, count) * HOUR_MS


def _assemble(
    rng: np.random.Generator,
    physical: dict[str, np.ndarray],
    created_ms: np.ndarray,
    updated_ms: np.ndarray,
    availability: np.ndarray,
    first_serial: int,
) -> StoneColumns:
    count = len(created_ms)
    labgrown = physical["labgrown"]
    natural_lab = rng.choice(3, size=count, p=(0.6, 0.3, 0.1))
    grown_lab = rng.choice(3, size=count, p=(0.2, 0.7, 0.1))
    # Better cuts come with better polish and symmetry.
    finish_base = (4 - physical["cut"].astype(np.int64)) // 2
    discount = np.where(
        rng.random(count) < 0.3, -np.round(rng.uniform(5, 60, count), 2), np.nan
    )
    stone_hi, stone_lo = _draw_uuid_halves(rng, count)
    offer_hi, offer_lo = _draw_uuid_halves(rng, count)

    return StoneColumns(
        **physical,
        created_ms=created_ms.astype(np.int64),
        updated_ms=updated_ms.astype(np.int64),
        tie_rank=first_serial + rng.permutation(count).astype(np.int64),
        availability=availability.astype(np.int8),
        listed=np.ones(count, dtype=bool),
        has_image=rng.random(count) < 0.9,
        has_video=rng.random(count) < 0.75,
        has_v360=rng.random(count) < 0.8,
        supplier=rng.integers(0, 5, count).astype(np.int8),
        lab=np.where(labgrown, grown_lab, natural_lab).astype(np.int8),
        polish=np.clip(finish_base + rng.integers(0, 2, count), 0, 3).astype(np.int8),
        symmetry=np.clip(finish_base + rng.integers(0, 2, count), 0, 3).astype(np.int8),
        fluorescence=rng.choice(4, size=count, p=(0.6, 0.2, 0.13, 0.07)).astype(
            np.int8
        ),
        discount=discount,
        stone_hi=stone_hi,
        stone_lo=stone_lo,
        offer_hi=offer_hi,
        offer_lo=offer_lo,
        serial=first_serial + rng.permutation(count).astype(np.int64),
        aux=rng.integers(0, 2**32, count, dtype=np.uint32),
    )


def _draw_uuid_halves(rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    """Draw random version-4 UUIDs as their high and low 64-bit halves."""
    high = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    low = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    high = (high & np.uint64(~0xF000 & (2**64 - 1))) | np.uint64(0x4000)
    low = (low & np.uint64(0x3FFF_FFFF_FFFF_FFFF)) | np.uint64(0x8000_0000_0000_0000)
    return high, low
