"""Fixtures of the API tests: a runtime with HMAC secrets, stocked stones, clients."""

from __future__ import annotations

import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

# Starlette 1.10 warns that its test client should use the httpx2 package.
# Once httpx2 is installed, gql uses it and the Nivoda transport fails, so
# the tests keep httpx and silence that one warning.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from decimal import Decimal

from psycopg import sql
from psycopg.types.json import Jsonb

from shared.api import create_app
from shared.api.auth import create_api_key
from shared.mapping import map_offer
from tests.conftest import make_settings

MARKUP = Decimal("1.15")
HMAC_SECRETS = {"shop": ["new-secret", "old-secret"], "other": ["other-secret"]}


@pytest.fixture
def api_runtime(clean_db, simulator, tmp_path):
    from shared.runtime import Runtime, set_runtime

    settings = make_settings(
        clean_db, simulator.url, tmp_path, hmac_secrets=HMAC_SECRETS,
        rate_limit_per_minute=100_000,
    )
    runtime = Runtime(settings)
    with runtime.pool.connection() as conn:
        conn.execute("truncate api_rate_windows, api_hmac_signatures")
        # Generated requests may rewrite or delete the default rule, which the
        # shared clean-up only resets when its priority is still 1000.
        conn.execute("truncate pricing_rules restart identity")
        conn.execute(
            "insert into pricing_rules (priority, markup_ratio, rating, description)"
            " values (1000, 1.15, 5, 'Default markup')"
        )
        conn.commit()
    set_runtime(runtime)
    yield runtime
    set_runtime(None)
    runtime.close()


_mapped_rows: list[dict] = []


def mapped_catalogue(runtime, simulator) -> list[dict]:
    """Map the simulator's initial catalogue once per session (it is reset per test)."""
    if not _mapped_rows:
        catalogue = simulator.catalogue
        items = catalogue.build_items(catalogue.matching_positions({}, None))
        for item in items:
            record = map_offer(item, runtime.settings.feed)._asdict()
            priced = (Decimal(record["feed_price_cents"]) * MARKUP).quantize(Decimal(1))
            _mapped_rows.append(
                {**record, "priced_price_cents": int(priced), "markup_ratio": MARKUP,
                 "rating": 5}
            )
    return _mapped_rows


def load_catalogue(runtime, simulator) -> int:
    """Store the simulator's catalogue in `diamonds`, mapped and priced at 1.15."""
    rows = [
        {**row, "measurements": Jsonb(row["measurements"]),
         "attributes": Jsonb(row["attributes"])}
        for row in mapped_catalogue(runtime, simulator)
    ]
    columns = list(rows[0])
    statement = sql.SQL("insert into diamonds ({}) values ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(name) for name in columns),
    )
    with runtime.pool.connection() as conn:
        with conn.cursor() as cur:
            cur.executemany(statement, rows)
        # The seeded catalogue has no lab-grown stone; mark some so that the
        # lab_grown filter has both values to tell apart.
        conn.execute("update diamonds set lab_grown = true where id % 5 = 0")
        conn.commit()
    return len(rows)


@pytest.fixture
def stocked(api_runtime, simulator):
    """The API runtime with the simulator's catalogue stored in `diamonds`."""
    load_catalogue(api_runtime, simulator)
    return api_runtime


@pytest.fixture
def app(api_runtime):
    return create_app(api_runtime)


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_key(api_runtime):
    """Create an API key with the given permissions; returns the key text."""

    def make(*permissions: str, client_name: str = "test-client", **options) -> str:
        with api_runtime.pool.connection() as conn:
            _, key = create_api_key(conn, client_name, list(permissions), **options)
            conn.commit()
        return key

    return make


@pytest.fixture
def admin_headers(make_key):
    return {"X-API-Key": make_key("admin")}


@pytest.fixture
def read_headers(make_key):
    return {"X-API-Key": make_key("read")}


@pytest.fixture
def trade_headers(make_key):
    return {"X-API-Key": make_key("trade")}
