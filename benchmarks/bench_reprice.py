"""Measure re-pricing of the stored inventory after pricing rule changes.

Fills `diamonds` in a fresh benchmark database with STONES generated stones.
Their shapes, carats, lab-grown flags and prices are spread like a supplier
feed, with measurements and attributes of a typical size. The script prices
them once, then times two changes through `shared.pricing`, each re-pricing
every stone in its transaction:

- a change of the default rule's markup, which changes every price;
- a new rule for ovals from 1 to 2 carats, which changes a few percent.

Run: `.venv/bin/python benchmarks/bench_reprice.py [--stones N]`.
Prints one JSON object. The database server is BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); the benchmark creates and
drops the database `bench_reprice` on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from shared import db, pricing  # noqa: E402

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "bench_reprice"

_FILL_DIAMONDS = """
insert into diamonds (feed, supplier_stone_id, offer_id, shape, carats, color,
    clarity, cut, lab_grown, feed_price_cents, feed_price_per_carat_cents,
    priced_price_cents, markup_ratio, availability, raw_availability,
    certificate_lab, certificate_number, measurements, attributes)
select 'nivoda', md5('stone' || g), 'DIAMOND/' || md5('offer' || g),
       (array['ROUND', 'ROUND', 'ROUND', 'OVAL', 'PEAR', 'CUSHION', 'EMERALD',
              'PRINCESS', 'RADIANT', 'MARQUISE'])[1 + g %% 10],
       s.carats, (array['D', 'E', 'F', 'G', 'H', 'I', 'J'])[1 + g %% 7],
       (array['IF', 'VVS1', 'VVS2', 'VS1', 'VS2', 'SI1', 'SI2'])[1 + g %% 7],
       'EXCELLENT', g %% 3 = 0, s.price_cents,
       round(s.price_cents / s.carats)::bigint, 0, 1, 'available', 'AVAILABLE',
       'GIA', (9000000000 + g)::text,
       jsonb_build_object('length', '6.41', 'width', '6.44', 'depth', '3.97',
                          'crown_angle', '34.5', 'crown_height', '15.0',
                          'pavilion_angle', '40.8', 'pavilion_depth', '43.0',
                          'girdle', 'MEDIUM', 'culet_size', 'NONE'),
       jsonb_build_object('eye_clean', true, 'milky', 'NONE',
                          'supplier_stock_id', 'SUP-' || g,
                          'nivoda_stock_id', 'NV' || g, 'discount', null)
from generate_series(0::bigint, %(stones)s - 1) g
cross join lateral (
    select round((0.2 + (g * 7919 %% 4800) / 1000.0)::numeric, 2) as carats,
           (20000 + (g * 104729) %% 3000000)::bigint as price_cents) s
"""


def database_url() -> str:
    return psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=DATABASE)


def prepare_database(stones: int) -> float:
    """Create and fill the benchmark database; return the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")
        conn.execute(f"create database {DATABASE}")
    db.migrate(database_url())
    with psycopg.connect(database_url()) as conn:
        conn.execute(_FILL_DIAMONDS, {"stones": stones})
        pricing.reprice(conn)
        conn.commit()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("vacuum analyze diamonds")
    return time.perf_counter() - started


def time_change(change) -> dict:
    with psycopg.connect(database_url()) as conn:
        started = time.perf_counter()
        _, result = change(conn)
        conn.commit()
        seconds = time.perf_counter() - started
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("vacuum analyze diamonds")
    return {"seconds": seconds, "changed": result.changed}


def change_default_markup(conn):
    rule = pricing.PricingRuleInput(
        priority=1000, markup_ratio=Decimal("1.2"), rating=5,
        description="Default markup",
    )
    return pricing.update_rule(conn, 1, rule)


def add_oval_rule(conn):
    rule = pricing.PricingRuleInput(
        priority=10, shapes=["OVAL"], carat_min=Decimal("1"),
        carat_max=Decimal("2"), markup_ratio=Decimal("1.3"), rating=8,
    )
    return pricing.create_rule(conn, rule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stones", type=int, default=1_000_000,
                        help="stones in the inventory")
    args = parser.parse_args()

    try:
        fill_seconds = prepare_database(args.stones)
        every_price = time_change(change_default_markup)
        some_prices = time_change(add_oval_rule)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"drop database if exists {DATABASE} with (force)")

    print(json.dumps({
        "benchmark": "reprice",
        "stones": args.stones,
        "fill_seconds": round(fill_seconds, 1),
        "all_prices_change_seconds": round(every_price["seconds"], 2),
        "all_prices_change_rows_per_second": round(
            args.stones / every_price["seconds"]),
        "all_prices_changed": every_price["changed"],
        "few_prices_change_seconds": round(some_prices["seconds"], 2),
        "few_prices_change_rows_per_second": round(
            args.stones / some_prices["seconds"]),
        "few_prices_changed": some_prices["changed"],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
