"""The `diamond-opus` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diamond-opus", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "WARNING"),
                        help="logging level (default WARNING; INFO shows every page)")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="sync the simulator's stones, then serve the API")
    demo.add_argument("--stones", type=int, default=53_940,
                      help="stones the simulator serves (default: the 53,940 real ones)")
    demo.add_argument("--seed", type=int, default=0,
                      help="simulator seed (default 0, as for `diamond-opus simulator`)")
    demo.add_argument("--no-serve", action="store_true", help="exit after the sync")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_serve_options(demo)

    sync = commands.add_parser("sync", help="run one sync against NIVODA_ENDPOINT")
    kind = sync.add_mutually_exclusive_group()
    kind.add_argument("--full", dest="run_type", action="store_const", const="full")
    kind.add_argument("--incremental", dest="run_type", action="store_const",
                      const="incremental")
    sync.add_argument("--workers", type=int, default=4, help="worker threads")

    serve = commands.add_parser("serve", help="serve the API with a local host behind it")
    _add_serve_options(serve)

    # The NUL prefix character matches no argument, so every option after
    # "simulator" (--port, --help) reaches the simulator's own parser.
    simulator = commands.add_parser("simulator", help="run the supplier simulator",
                                    add_help=False, prefix_chars="\x00")
    simulator.add_argument("args", nargs=argparse.REMAINDER)

    keys = commands.add_parser("api-keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--client", required=True, help="client name")
    create.add_argument("--permissions", default="read",
                        help="comma-separated: read, trade, admin (default read)")
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", help="deactivate a key")
    revoke.add_argument("key_id", type=int)

    runs = commands.add_parser("runs", help="operate on a run: retry, resume, consolidate, cancel")
    runs.add_argument("action", choices=["retry", "resume", "consolidate", "cancel"],
                      help="retry: re-fetch failed partitions; resume: wait for the run and"
                      " consolidate it; consolidate: consolidate now; cancel: stop paging")
    runs.add_argument("run_id")
    runs.add_argument("--workers", type=int, default=4, help="worker threads")

    commands.add_parser(
        "requeue-failed",
        help="queue the raw rows that failed to map (after a mapping fix); the next"
        " consolidation, such as `runs consolidate RUN_ID`, takes them",
    )
    purchases = commands.add_parser(
        "purchases",
        help="release-interrupted: free the keys and stones of purchases left pending"
        " by a process that died, so that a retry orders again",
    )
    purchases.add_argument("action", choices=["release-interrupted"])
    purchases.add_argument("--older-than-minutes", type=int, default=30,
                           help="release purchases pending for longer than this,"
                           " in minutes (default 30)")
    commands.add_parser("migrate", help="apply database migrations")
    return parser


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "simulator":
        from simulator.cli import main as simulator_main

        return simulator_main(args.args, prog="diamond-opus simulator")

    from cli import commands
    from shared.nivoda import NivodaError

    handler = getattr(commands, args.command.replace("-", "_"))
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        return 130
    except commands.CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NivodaError as exc:
        log.debug("supplier request failed", exc_info=True)
        print(
            f"error: the supplier request failed: {exc}; check that NIVODA_ENDPOINT"
            " points at a running supplier (or `diamond-opus simulator`)",
            file=sys.stderr,
        )
        return 1


def print_json(document: dict) -> None:
    print(json.dumps(document, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
