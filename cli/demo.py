"""The demo: real diamonds through the whole pipeline, then the API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from cli.commands import _local_runtime, run_sync, serve_api
from cli.main import print_json


def run_demo(args) -> int:
    from cli.local_host import LocalHost

    # The simulator runs in its own process, as a supplier would, so that it
    # does not share this process's interpreter lock with the workers.
    simulator = SimulatorProcess(args.stones, args.seed).start()
    runtime = _local_runtime(
        nivoda_endpoint=simulator.url, nivoda_requests_per_second=1000,
        gate_poll_seconds=0.5, gate_partial_delay_seconds=5,
    )
    host = LocalHost(runtime, worker_threads=8).start()
    try:
        _cancel_unfinished_runs(runtime)
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
        runtime.close()
        simulator.stop()
    return 0


def _cancel_unfinished_runs(runtime) -> None:
    """Cancel runs left active by an earlier demo that was stopped midway.

    The demo owns its local database and queue, and a new demo's queue is
    empty, so nothing will ever finish such a run.
    """
    from shared import run_control, runs

    with runtime.pool.connection() as conn:
        run_id = runs.find_active_run(conn, runtime.settings.feed)
    while run_id:
        run_control.cancel(runtime, run_id)
        print(f"Cancelled run {run_id}, left unfinished by an earlier demo.",
              file=sys.stderr)
        with runtime.pool.connection() as conn:
            run_id = runs.find_active_run(conn, runtime.settings.feed)


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


class SimulatorProcess:
    """The supplier simulator in a child process on a free loopback port."""

    def __init__(self, stones: int, seed: int) -> None:
        self.stones = stones
        self.seed = seed
        self.port = _free_port()
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def start(self, timeout_seconds: float = 120.0) -> SimulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port",
             str(self.port), "--stones", str(self.stones), "--seed", str(self.seed),
             "--log-level", "WARNING"],
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"simulator exited with code {self._process.returncode}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"simulator did not answer within {timeout_seconds:.0f} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
