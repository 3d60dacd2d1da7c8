"""The demo: real diamonds through the whole pipeline, then the API."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cli.commands import _local_runtime, run_sync, serve_api
from cli.main import print_json


def run_demo(args) -> int:
    from simulator import Simulator

    from cli.local_host import LocalHost

    simulator = Simulator(stones=args.stones, seed=args.seed).start(host="127.0.0.1", port=0)
    watermarks = Path(tempfile.gettempdir()) / "diamond-opus" / "demo-watermarks"
    shutil.rmtree(watermarks, ignore_errors=True)
    runtime = _local_runtime(
        nivoda_endpoint=simulator.url, nivoda_requests_per_second=1000,
        gate_poll_seconds=0.5, gate_partial_delay_seconds=5, watermark_dir=str(watermarks),
    )
    host = LocalHost(runtime, worker_threads=8).start()
    try:
        summary = run_sync(host, "full")
        if args.json or args.no_serve:
            print_json(summary)
        if args.no_serve:
            return 0 if summary["consolidated"] == summary["expected"] else 1
        _print_summary(summary)
        key = _demo_key(runtime)
        base = f"http://{args.host}:{args.port}"
        print(f"\nAPI key (read, trade, admin): {key}")
        print(f"Try:  curl -s -H 'X-API-Key: {key}' "
              f"'{base}/api/v2/diamonds?shape=ROUND&carat_min=1&limit=3'")
        print(f"Docs: {base}/api/v2/docs    Stop with Ctrl-C.\n", flush=True)
        serve_api(host, args.host, args.port)
    finally:
        host.stop()
        simulator.stop()
    return 0


def _print_summary(summary: dict) -> None:
    print(f"Run {summary['run_id']}: {summary['status']} in {summary['seconds']} s")
    print(f"  supplier count {summary['expected']}, raw rows {summary['raw']},"
          f" consolidated {summary['consolidated']}")
    print(f"  partitions {summary['partitions']} (failed {summary['failed_partitions']}),"
          f" pages {summary['pages']}, count queries {summary['count_queries']}")


def _demo_key(runtime) -> str:
    from shared.api.auth import create_api_key

    with runtime.pool.connection() as conn:
        _, key = create_api_key(conn, "demo", ["read", "trade", "admin"])
    return key
