"""Full sync of N simulated stones through the local host; prints one JSON object.

    .venv/bin/python benchmarks/bench_sync.py --stones 1000000

Uses DATABASE_URL when set (a fresh database is created on that server),
otherwise the embedded PostgreSQL. The simulator runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.commands import run_sync  # noqa: E402
from cli.demo import SimulatorProcess  # noqa: E402
from cli.local_host import LocalHost  # noqa: E402
from shared.runtime import Runtime  # noqa: E402
from shared.settings import load_settings  # noqa: E402


def _fresh_database() -> tuple[str, str]:
    admin = os.environ.get("DATABASE_URL")
    if not admin:
        from cli.embedded_pg import start_embedded_postgres

        admin = psycopg.conninfo.make_conninfo(start_embedded_postgres(), dbname="postgres")
    name = f"opus_bench_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    return admin, name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stones", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=8, help="worker threads")
    args = parser.parse_args()

    admin, name = _fresh_database()
    simulator = SimulatorProcess(args.stones, seed=7).start(timeout_seconds=600)
    settings = load_settings(
        database_url=psycopg.conninfo.make_conninfo(admin, dbname=name),
        nivoda_endpoint=simulator.url, nivoda_requests_per_second=10_000,
        gate_poll_seconds=1, watermark_dir=tempfile.mkdtemp(prefix="bench-watermarks-"),
    )
    runtime = Runtime(settings)
    host = LocalHost(runtime, worker_threads=args.workers).start()
    try:
        started = time.monotonic()
        summary = run_sync(host, "full")
        seconds = time.monotonic() - started
        stats = _simulator_stats(simulator)
    finally:
        host.stop()
        simulator.stop()
        runtime.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")

    requests = stats["requests"] if stats else {}
    total_requests = requests.get("total")
    print(json.dumps({
        "benchmark": "full_sync", "stones": args.stones, "workers": args.workers,
        "status": summary["status"], "expected": summary["expected"],
        "consolidated": summary["consolidated"], "partitions": summary["partitions"],
        "pages": summary["pages"], "count_queries": summary["count_queries"],
        "seconds": round(seconds, 1),
        "stones_per_second": round(summary["consolidated"] / seconds, 1),
        "supplier_requests": total_requests,
        "supplier_requests_by_operation": requests.get("by_operation"),
        "requests_per_stone": (round(total_requests / summary["expected"], 4)
                               if total_requests else None),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))
    return 0 if summary["consolidated"] == summary["expected"] else 1


def _simulator_stats(simulator) -> dict | None:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{simulator.port}/admin/stats", timeout=10).json()
    except httpx.HTTPError:
        return None


if __name__ == "__main__":
    sys.exit(main())
