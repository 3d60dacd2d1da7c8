"""Benchmark of the REST API on 1,000,000 stored stones.

Run from the repository root: `python benchmarks/bench_api.py`. It creates
the database `bench_api` on the PostgreSQL at 127.0.0.1:5432 (or on
BENCH_DATABASE_URL's server) and fills `diamonds` with synthetic stones in
one set-based INSERT. The simulator's stones are added for the hold
scenario. The API runs under uvicorn in its own process on a loopback port,
and client threads in this process drive each scenario for a fixed time.
Prints one JSON object: p50/p99 latency in milliseconds and requests per
second per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from shared import db  # noqa: E402
from shared.api.auth import create_api_key  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import load_settings  # noqa: E402

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "bench_api"

# Synthetic stones: shapes weighted towards ROUND as in real inventories,
# carats 0.30 to 3.00, a price per carat of 2,000 to 15,000 dollars.
GENERATE_STONES = """
insert into diamonds (
    feed, supplier_stone_id, offer_id, shape, carats, color, clarity, cut, polish,
    symmetry, fluorescence, lab_grown, feed_price_cents, feed_price_per_carat_cents,
    priced_price_cents, markup_ratio, rating, availability, raw_availability,
    image_url, certificate_lab, certificate_number, depth_percent, table_percent,
    length_width_ratio, status)
select 'bench', 'stone-' || g, 'DIAMOND/offer-' || g,
    (array['ROUND', 'ROUND', 'ROUND', 'ROUND', 'OVAL', 'PRINCESS', 'CUSHION',
           'EMERALD', 'PEAR', 'RADIANT'])[1 + floor(random() * 10)::int],
    s.carats,
    (array['D', 'E', 'F', 'G', 'H', 'I', 'J'])[1 + floor(random() * 7)::int],
    (array['IF', 'VVS1', 'VVS2', 'VS1', 'VS2', 'SI1', 'SI2'])[1 + floor(random() * 7)::int],
    'EXCELLENT', 'EXCELLENT', 'EXCELLENT', 'NONE', random() < 0.3,
    s.feed_price, s.feed_price / s.carats, round(s.feed_price * 1.15), 1.15, 5,
    case when random() < 0.9 then 'available' else 'on_hold' end, 'AVAILABLE',
    'https://images.example/' || g || '.jpg', 'GIA', 'cert-' || g,
    60 + random() * 4, 54 + random() * 6, 1 + random() * 0.5, 'active'
from generate_series(1, %(stones)s) g
cross join lateral (
    select round((0.30 + random() * 2.70)::numeric, 2) as carats, g as tie) c
cross join lateral (
    select c.carats,
           round(c.carats * (200000 + random() * 1300000))::bigint as feed_price) s
"""


def prepare_database(stones: int) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")
        conn.execute(f"create database {DATABASE}")
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=DATABASE)
    db.migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(GENERATE_STONES, {"stones": stones})
        conn.execute("vacuum analyze diamonds")
    return url


def load_simulator_stones(runtime, simulator) -> list[int]:
    """Store the simulator's stones (real supplier ids) for the hold scenario."""
    from psycopg import sql
    from psycopg.types.json import Jsonb

    from shared.mapping import map_offer

    catalogue = simulator.catalogue
    items = catalogue.build_items(catalogue.matching_positions({}, None))
    rows = []
    for item in items:
        record = map_offer(item, runtime.settings.feed)._asdict()
        record["measurements"] = Jsonb(record["measurements"])
        record["attributes"] = Jsonb(record["attributes"])
        record.update(priced_price_cents=record["feed_price_cents"], markup_ratio=1, rating=5)
        rows.append(record)
    columns = list(rows[0])
    statement = sql.SQL("insert into diamonds ({}) values ({}) returning id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(name) for name in columns),
    )
    ids = []
    with runtime.pool.connection() as conn:
        with conn.cursor() as cur:
            cur.executemany(statement, rows, returning=True)
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
        conn.execute(
            "delete from diamonds where availability <> 'available' and feed = 'nivoda'"
        )
        available = {
            row[0] for row in conn.execute(
                "select id from diamonds where feed = 'nivoda'"
            ).fetchall()
        }
        conn.commit()
    return [i for i in ids if i in available]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(settings: dict, port: int):
    """Run the API under uvicorn in its own process, so clients do not share its GIL."""
    import subprocess

    env = {**os.environ, **{name.upper(): str(value) for name, value in settings.items()}}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "shared.api.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        cwd=REPOSITORY, env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).raise_for_status()
            return server
        except httpx.HTTPError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"uvicorn did not start on port {port}") from None
            time.sleep(0.1)


def run_scenario(base_url: str, headers: dict, make_request, *, threads: int,
                 seconds: float) -> dict:
    """Send requests from `threads` clients for `seconds`; return latency figures."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(worker_id: int) -> None:
        state: dict = {"worker": worker_id}
        local, failed = [], []
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            while time.monotonic() < stop_at:
                method, url = make_request(state)
                if url is None:
                    break
                started = time.perf_counter()
                response = client.request(method, url)
                local.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    failed.append(response.status_code)
                state["last"] = response
        with lock:
            latencies.extend(local)
            errors.extend(failed)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)
        if latencies else None,
        "requests_per_second": round(len(latencies) / elapsed, 1),
    }


def typical_search(state: dict):
    low = random.choice([1.0, 1.2, 1.5])
    price_min = random.choice([300_000, 500_000, 800_000])
    return "GET", (
        f"/api/v2/diamonds?shape=ROUND&carat_min={low}&carat_max={low + 0.5}"
        f"&price_min_cents={price_min}&price_max_cents={price_min * 3}&sort=price&limit=20"
    )


def deep_cursor(state: dict):
    last = state.get("last")
    cursor = last.json().get("next_cursor") if last is not None else None
    if last is None:
        # Start each client at a different depth of the price order.
        start = 300_000 + state["worker"] * 400_000
        return "GET", f"/api/v2/diamonds?sort=price&limit=50&price_min_cents={start}"
    if cursor is None:
        state.pop("last")
        return deep_cursor(state)
    return "GET", (
        f"/api/v2/diamonds?sort=price&limit=50&price_min_cents="
        f"{300_000 + state['worker'] * 400_000}&cursor={cursor}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stones", type=int, default=1_000_000,
                        help="synthetic stones to store")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="duration of each scenario, in seconds")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    args = parser.parse_args()

    from simulator import Simulator

    started = time.perf_counter()
    url = prepare_database(args.stones)
    load_seconds = round(time.perf_counter() - started, 1)
    simulator = Simulator(stones=20_000, seed=3).start(host="127.0.0.1", port=0)
    server_settings = dict(
        database_url=url, nivoda_endpoint=simulator.url, nivoda_requests_per_second=5000,
        rate_limit_per_minute=10_000_000, database_pool_max_size=args.threads * 2 + 4,
    )
    runtime = Runtime(load_settings(**server_settings))
    hold_ids = load_simulator_stones(runtime, simulator)
    with runtime.pool.connection() as conn:
        _, key = create_api_key(conn, "bench", ["admin"])
        max_id = conn.execute("select max(id) from diamonds").fetchone()[0]
        conn.commit()

    port = free_port()
    server = serve(server_settings, port)
    base_url = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": key}
    random.seed(5)
    hold_queue = list(hold_ids)
    hold_lock = threading.Lock()

    def get_by_id(state: dict):
        return "GET", f"/api/v2/diamonds/{random.randint(1, max_id)}"

    def hold(state: dict):
        with hold_lock:
            if not hold_queue:
                return "POST", None
            diamond_id = hold_queue.pop()
        return "POST", f"/api/v2/diamonds/{diamond_id}/hold"

    scenarios = {
        "typical_search": typical_search,
        "deep_cursor_pages": deep_cursor,
        "get_by_id": get_by_id,
        "hold": hold,
    }
    figures = {"stones": args.stones, "load_seconds": load_seconds,
               "threads": args.threads, "seconds_per_scenario": args.seconds}
    try:
        for name, make_request in scenarios.items():
            figures[name] = run_scenario(base_url, headers, make_request,
                                         threads=args.threads, seconds=args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=10)
        runtime.close()
        simulator.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
