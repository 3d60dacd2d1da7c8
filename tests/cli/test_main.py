"""The `diamond-opus` argument parser and command dispatch."""

from __future__ import annotations

import socket

import pytest

from cli import main as cli_main


def test_simulator_options_pass_through():
    argv = ["simulator", "--port", "8765", "--stones", "10", "--faults", '{"a": 1}']

    args = cli_main.build_parser().parse_args(argv)

    assert args.command == "simulator"
    assert args.args == ["--port", "8765", "--stones", "10", "--faults", '{"a": 1}']


def test_simulator_help_is_simulator_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["simulator", "--help"])

    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    assert "--stones" in output
    assert "--faults" in output
    assert output.startswith("usage: diamond-opus simulator")


def test_simulator_receives_its_arguments(monkeypatch):
    received = []
    monkeypatch.setattr("simulator.cli.main",
                        lambda argv, prog: received.append(argv) or 0)

    status = cli_main.main(["simulator", "--port", "0", "--stones", "5"])

    assert status == 0
    assert received == [["--port", "0", "--stones", "5"]]


def test_sync_with_supplier_down_prints_error(monkeypatch, clean_db, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("NIVODA_ENDPOINT", f"http://127.0.0.1:{unused_port()}/graphql")
    monkeypatch.setenv("NIVODA_MAX_RETRIES", "0")
    monkeypatch.setenv("WATERMARK_DIR", str(tmp_path / "watermarks"))

    status = cli_main.main(["sync", "--full"])

    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("error: the supplier request failed")
    assert "NIVODA_ENDPOINT" in error
    assert "Traceback" not in error


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
