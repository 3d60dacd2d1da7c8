"""Command line: run the simulator until interrupted."""

import argparse
import json
import logging

from simulator.faults import FaultConfigError, parse_config
from simulator.generation import REAL_STONE_COUNT
from simulator.runner import Simulator
from simulator.service import DEFAULT_TOKEN_TTL_SECONDS, TOTAL_COUNT_MODES

logger = logging.getLogger(__name__)


def build_parser(prog: str = "python -m simulator") -> argparse.ArgumentParser:
    """Build the simulator's argument parser; `prog` names the command in help."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a Nivoda-compatible diamond supplier API over GraphQL.",
    )

    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8765, help="TCP port, 0 for any")

    parser.add_argument(
        "--stones",
        type=int,
        default=REAL_STONE_COUNT,
        help=(
            f"number of stones; the first {REAL_STONE_COUNT} are real rows, "
            "more are derived from them"
        ),
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated catalogue"
    )
    parser.add_argument(
        "--faults",
        type=_fault_config,
        default=None,
        help='fault configuration as JSON, e.g. \'{"http_503": {"rate": 0.05}}\'',
    )

    parser.add_argument("--user", default="demo", help="accepted login username")
    parser.add_argument("--password", default="demo", help="accepted login password")
    parser.add_argument(
        "--token-ttl-seconds",
        type=float,
        default=DEFAULT_TOKEN_TTL_SECONDS,
        help="lifetime of a login token in seconds",
    )

    parser.add_argument(
        "--total-count-mode",
        choices=TOTAL_COUNT_MODES,
        default="remaining",
        help=(
            "what a page's total_count contains: rows left from the offset, "
            "the page size, or the total"
        ),
    )
    parser.add_argument(
        "--overrun",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="past the last row, keep returning the last rows instead of an empty page",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level name")
    return parser


def _fault_config(text: str) -> dict:
    try:
        config = json.loads(text)
        parse_config(config)
    except (json.JSONDecodeError, FaultConfigError) as error:
        raise argparse.ArgumentTypeError(f"invalid --faults: {error}") from None
    return config


def main(argv: list[str] | None = None, prog: str = "python -m simulator") -> int:
    """Run the simulator until interrupted; return the exit status."""
    args = build_parser(prog).parse_args(argv)
    # force: `diamond-opus simulator` has configured logging already, and
    # --log-level must still apply, so that the serving URL is logged.
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    simulator = Simulator(
        stones=args.stones,
        seed=args.seed,
        faults=args.faults,
        username=args.user,
        password=args.password,
        token_ttl_seconds=args.token_ttl_seconds,
        total_count_mode=args.total_count_mode,
        overrun=args.overrun,
    )
    try:
        simulator.serve_forever(args.host, args.port)
    except KeyboardInterrupt:
        logger.info("Simulator interrupted, stopping")
    return 0
