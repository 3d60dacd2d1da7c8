"""Benchmark of syncs under chaos: faults injected, outcomes and time per seed.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (or
TEST_DATABASE_URL): `python benchmarks/bench_chaos.py --stones 5000 --seeds 1 2 3`.
For each seed it creates a fresh database, starts the simulator with the
given catalogue size and runs the scenario of `tests/test_chaos.py` on the
local host. The scenario is a full and an incremental run with supplier
faults, queue duplicates, worker crashes and stone changes, then a clean
full run. Every
check of the test is made; a failed check stops the benchmark with its
assertion. Prints one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests"))

from test_chaos import chaos_settings, run_scenario, start_chaos_host

from shared import db
from simulator import Simulator

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def create_database() -> tuple[str, str]:
    name = f"opus_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    db.migrate(url)
    return name, url


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


def run_seed(stones: int, seed: int, workers: int) -> dict:
    from shared.runtime import Runtime, set_runtime

    name, url = create_database()
    sim = Simulator(stones=stones, seed=seed).start(host="127.0.0.1", port=0)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as folder:
            runtime = Runtime(
                chaos_settings(
                    url,
                    sim.url,
                    Path(folder),
                    partition_target_stones=200,
                    page_size=25,
                )
            )
            set_runtime(runtime)
            host, queue_chaos = start_chaos_host(runtime, sim, seed, workers=workers)
            try:
                figures = run_scenario(host, sim, seed, queue_chaos)
            finally:
                host.stop()
                set_runtime(None)
                runtime.close()
    finally:
        sim.stop()
        drop_database(name)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def summarize(results: list[dict]) -> dict:
    supplier, queue = Counter(), Counter()
    statuses = Counter()
    for result in results:
        supplier.update(result["supplier_faults"])
        queue.update(result["queue_faults"])
        statuses.update(f"{run['run_type']}:{run['status']}" for run in result["runs"])
    return {
        "supplier_faults": dict(supplier),
        "queue_faults": dict(queue),
        "run_outcomes": dict(statuses),
        "drifted_partitions": sum(
            run.get("drifted_partitions", 0)
            for result in results
            for run in result["runs"]
        ),
        "failed_partitions": sum(
            run.get("failed_partitions", 0)
            for result in results
            for run in result["runs"]
        ),
        "stale_in_unproven": sum(
            run.get("stale_in_unproven", 0)
            for result in results
            for run in result["runs"]
        ),
        "seconds_per_seed": [result["seconds"] for result in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stones",
        type=int,
        default=5000,
        help="catalogue size of the simulator (default 5000)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="seeds of the faults and the catalogue (default 1 2 3)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="worker threads of the local host (default 4)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)

    results = [run_seed(args.stones, seed, args.workers) for seed in args.seeds]
    print(
        json.dumps(
            {
                "stones": args.stones,
                "seeds": args.seeds,
                "workers": args.workers,
                "summary": summarize(results),
                "per_seed": results,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
