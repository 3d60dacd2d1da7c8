"""Measure `shared.mapping.map_offer` throughput on simulator payloads.

Builds DISTINCT payloads with the simulator's catalogue (real ggplot2 rows
plus derived stones of every shape), serialises them as the raw store keeps
them, and maps them MAPPINGS times in all, cycling through the distinct set.
Three figures per round: mapping alone on parsed payloads (read back from
main memory), `json.loads` alone, and `json.loads` plus mapping, which is
what consolidation does per raw row. The best of
ROUNDS rounds is reported, in CPU time of this process (time.process_time),
because other processes share the CPU and would inflate wall-clock time.

Run: `.venv/bin/python benchmarks/bench_mapping.py [--mappings N]`.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.mapping import MappingError, map_offer
from simulator.catalogue import Catalogue

CATALOGUE_STONES = 200_000
DISTINCT = 20_000
ROUNDS = 3
FEED = "nivoda"


def build_payload_texts(distinct: int, seed: int) -> list[str]:
    """Return `distinct` item JSON texts spread over the whole catalogue."""
    catalogue = Catalogue(CATALOGUE_STONES, seed)
    step = max(1, CATALOGUE_STONES // distinct)
    positions = list(range(0, CATALOGUE_STONES, step))[:distinct]
    return [json.dumps(item) for item in catalogue.build_items(positions)]


def time_map_only(payloads: list[dict], mappings: int) -> tuple[float, int]:
    """Map parsed payloads; return CPU seconds and the failure count."""
    failures = 0
    count = len(payloads)
    started = time.process_time()
    for index in range(mappings):
        try:
            map_offer(payloads[index % count], FEED)
        except MappingError:
            failures += 1
    return time.process_time() - started, failures


def time_parse_only(texts: list[str], mappings: int) -> float:
    """Parse JSON texts without mapping; return CPU seconds."""
    count = len(texts)
    loads = json.loads
    started = time.process_time()
    for index in range(mappings):
        loads(texts[index % count])
    return time.process_time() - started


def time_parse_and_map(texts: list[str], mappings: int) -> float:
    """Parse and map JSON texts; return CPU seconds."""
    count = len(texts)
    loads = json.loads
    started = time.process_time()
    for index in range(mappings):
        try:
            map_offer(loads(texts[index % count]), FEED)
        except MappingError:
            pass
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mappings", type=int, default=200_000, help="payloads mapped per round"
    )
    parser.add_argument("--seed", type=int, default=7, help="catalogue seed")
    args = parser.parse_args()

    texts = build_payload_texts(DISTINCT, args.seed)
    payloads = [json.loads(text) for text in texts]
    map_only_seconds = []
    parse_only_seconds = []
    parse_and_map_seconds = []
    failures = 0
    for _ in range(ROUNDS):
        elapsed, failures = time_map_only(payloads, args.mappings)
        map_only_seconds.append(elapsed)
        parse_only_seconds.append(time_parse_only(texts, args.mappings))
        parse_and_map_seconds.append(time_parse_and_map(texts, args.mappings))

    best_map = min(map_only_seconds)
    best_parse_only = min(parse_only_seconds)
    best_parse = min(parse_and_map_seconds)
    # Mapping right after parsing finds the payload in the CPU cache, as in
    # consolidation, so the difference is the mapping cost there.
    map_after_parse = max(0.0, best_parse - best_parse_only)
    result = {
        "benchmark": "map_offer",
        "mappings_per_round": args.mappings,
        "distinct_payloads": len(texts),
        "mean_payload_bytes": round(sum(map(len, texts)) / len(texts)),
        "rounds": ROUNDS,
        "mapping_failures_per_round": failures,
        "map_only_payloads_per_second": round(args.mappings / best_map),
        "map_only_microseconds_per_payload": round(best_map / args.mappings * 1e6, 2),
        "parse_only_microseconds_per_payload": round(
            best_parse_only / args.mappings * 1e6, 2
        ),
        "parse_and_map_payloads_per_second": round(args.mappings / best_parse),
        "parse_and_map_microseconds_per_payload": round(
            best_parse / args.mappings * 1e6, 2
        ),
        "map_after_parse_microseconds_per_payload": round(
            map_after_parse / args.mappings * 1e6, 2
        ),
        "clock": "process_time",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
