"""Benchmark of the supplier simulator: generation time and page throughput.

Run from the repository root: `python benchmarks/bench_simulator.py`. It
generates 1,000,000 stones in process, then starts `python -m simulator` with
1,000,000 stones as a separate process on a free loopback port and fetches
pages of 50 full items ordered by createdAt, as the pipeline's workers do.
Prints one JSON object of figures.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests" / "simulator"))

from supplier_client import COUNT, LOGIN, PAGE  # noqa: E402

from simulator.catalogue import Catalogue  # noqa: E402
from simulator.generation import generate_stones  # noqa: E402

QUERY = {"updated": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}
ORDER = {"type": "createdAt", "direction": "ASC"}


def measure_generation(stones: int) -> dict:
    started = time.perf_counter()
    generate_stones(stones, seed=1)
    generated = time.perf_counter() - started

    started = time.perf_counter()
    Catalogue(stones, seed=1)
    catalogue = time.perf_counter() - started
    return {
        "generate_seconds": round(generated, 3),
        "catalogue_seconds": round(catalogue, 3),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(stones: int, port: int) -> tuple[subprocess.Popen, float]:
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--port",
        str(port),
        "--stones",
        str(stones),
    ]
    command += ["--log-level", "WARNING"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPOSITORY)
    deadline = started + 120
    while time.perf_counter() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"simulator did not answer on port {port} within 120 s")


def fetch_pages(url: str, token: str, offsets: list[int]) -> list[float]:
    latencies = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=30) as http:
        for offset in offsets:
            variables = {"query": QUERY, "offset": offset, "limit": 50, "order": ORDER}
            started = time.perf_counter()
            response = http.post(
                url, json={"query": PAGE, "variables": variables}, headers=headers
            )
            body = response.json()
            latencies.append(time.perf_counter() - started)
            if (
                "errors" in body
                or len(body["data"]["diamonds_by_query"]["items"]) != 50
            ):
                raise RuntimeError(f"page at offset {offset} failed: {str(body)[:300]}")
    return latencies


def measure_pages(url: str, pages: int, threads: int) -> dict:
    with httpx.Client(timeout=60) as http:
        login = {"username": "demo", "password": "demo"}
        token = http.post(url, json={"query": LOGIN, "variables": login}).json()
        token = token["data"]["authenticate"]["username_and_password"]["token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        count_body = {"query": COUNT, "variables": {"query": QUERY}}
        count = http.post(url, json=count_body, headers=headers).json()
        first_count_seconds = time.perf_counter() - started
    count = count["data"]["diamonds_by_query_count"]

    offsets = [(index * 50 * 37) % (count - 50) for index in range(pages)]
    shares = [offsets[start::threads] for start in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = [
            value
            for part in pool.map(
                fetch_pages, [url] * threads, [token] * threads, shares
            )
            for value in part
        ]
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "threads": threads,
        "pages": pages,
        "requests_per_second": round(pages / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
        "first_count_seconds": round(first_count_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stones", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--pages", type=int, default=2000, help="pages fetched per run")
    args = parser.parse_args()

    figures = {"stones": args.stones, "generation": measure_generation(args.stones)}
    port = free_port()
    process, startup_seconds = start_server(args.stones, port)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        figures["server_startup_seconds"] = round(startup_seconds, 3)
        figures["pages_sequential"] = measure_pages(url, args.pages, threads=1)
        figures["pages_4_threads"] = measure_pages(url, args.pages, threads=4)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
