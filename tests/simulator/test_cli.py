import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulator.cli import build_parser

REPOSITORY = Path(__file__).resolve().parents[2]


def test_parser_defaults():
    args = build_parser().parse_args([])

    assert args.host == "127.0.0.1"
    assert args.port == 8765
    assert args.stones == 53_940
    assert args.user == "demo"
    assert args.overrun is True


def test_parser_reads_faults():
    args = build_parser().parse_args(
        ["--faults", json.dumps({"http_503": {"rate": 0.1}})]
    )

    assert args.faults == {"http_503": {"rate": 0.1}}


@pytest.mark.parametrize("faults", ["{not json", '{"boom": {}}'])
def test_parser_rejects_invalid_faults(faults, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--faults", faults])

    assert "invalid --faults" in capsys.readouterr().err


def test_module_serves_until_stopped():
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--port",
        "0",
        "--stones",
        "300",
        "--no-overrun",
    ]
    process = subprocess.Popen(
        command, cwd=REPOSITORY, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    try:
        url = None
        for line in process.stderr:
            match = re.search(r"url=(\S+)", line)
            if match:
                url = match.group(1)
                break
        health = httpx.get(url.removesuffix("/graphql") + "/health", timeout=10).json()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()

    assert health == {"status": "ok", "stones": 300}
