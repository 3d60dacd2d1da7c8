"""Fixtures shared by the whole suite: a real PostgreSQL, the simulator, a local host."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from shared import db

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_TABLES_TO_EMPTY = (
    "api_keys, run_metadata, partition_progress, worker_runs, raw_diamonds_nivoda,"
    " hold_history, purchase_history, diamonds, error_logs, heatmap_scans,"
    " api_rate_windows, api_hmac_signatures, raw_diamonds_nivoda_pending"
)


def _admin_url() -> str:
    """The server to create test databases on: TEST_DATABASE_URL, local, or embedded."""
    if "TEST_DATABASE_URL" in os.environ:
        return ADMIN_URL
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return ADMIN_URL
    except psycopg.OperationalError:
        from cli.embedded_pg import start_embedded_postgres

        embedded = start_embedded_postgres()
        return psycopg.conninfo.make_conninfo(embedded, dbname="postgres")


@pytest.fixture(scope="session")
def database_url():
    """A fresh database with every migration applied, dropped after the session."""
    admin_url = _admin_url()
    name = f"opus_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    db.migrate(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def clean_db(database_url):
    """The test database with every table emptied and only the default pricing rule."""
    from shared import bulk_load

    with psycopg.connect(database_url, autocommit=True) as conn:
        bulk_load.restore_search_indexes(conn)
        conn.execute(f"truncate {_TABLES_TO_EMPTY} restart identity cascade")
        conn.execute("delete from pricing_rules where id <> 1")
        conn.execute("update pricing_rules set priority = 1000, markup_ratio = 1.15,"
                     " rating = 5, active = true, carat_min = null, carat_max = null,"
                     " shapes = null, lab_grown = null, feed = null,"
                     " feed_price_min_cents = null, feed_price_max_cents = null"
                     " where id = 1")
    return database_url


@pytest.fixture(scope="session")
def simulator_server():
    from simulator import Simulator

    sim = Simulator(stones=2000, seed=11).start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


@pytest.fixture
def simulator(simulator_server):
    """The session's simulator, reset to its initial catalogue with no faults."""
    simulator_server.catalogue.reset()
    simulator_server.service.faults.configure({})
    simulator_server.service.reset_stats()
    return simulator_server


def make_settings(database_url: str, nivoda_endpoint: str, tmp_path: Path, **overrides):
    from shared.settings import load_settings

    values = dict(
        database_url=database_url, nivoda_endpoint=nivoda_endpoint,
        nivoda_requests_per_second=2000, nivoda_max_retries=3,
        gate_poll_seconds=0.1, gate_partial_delay_seconds=0.2, gate_timeout_hours=0.05,
        watermark_dir=str(tmp_path / "watermarks"), partition_target_stones=200,
        max_delivery_count=5,
    )
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def runtime(clean_db, simulator, tmp_path):
    from shared.runtime import Runtime, set_runtime

    rt = Runtime(make_settings(clean_db, simulator.url, tmp_path))
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.close()


@pytest.fixture
def local_host(runtime):
    from cli.local_host import LocalHost

    host = LocalHost(runtime, worker_threads=4, lock_seconds=30).start()
    yield host
    host.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve_asgi():
    """Serve ASGI apps with uvicorn on loopback threads; each call returns a base URL."""
    import threading

    import uvicorn

    servers = []

    def serve(app) -> str:
        port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite's blob service on loopback; the connection string of its dev account."""
    binary = shutil.which("azurite-blob") or str(ROOT / "node_modules/.bin/azurite-blob")
    if not Path(binary).exists():
        pytest.skip("azurite is not installed: run `npm install` in the project folder")
    port = _free_port()
    folder = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
         str(folder), "--disableTelemetry", "--silent", "--skipApiVersionCheck"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("azurite did not open its port within 30 s")
    account_key = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOt"
                   "r/KBHBeksoGMGw==")
    yield (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
           f"AccountKey={account_key};"
           f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def function_index():
    """The app's functions as the Functions host indexes them, by name."""
    from cli.local_host import index_functions

    return index_functions()
