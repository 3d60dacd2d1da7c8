"""Build the FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.api.body_limit import BodySizeLimit
from shared.api.errors import install_error_handlers
from shared.api.routes import analytics, dashboard
from shared.api.routes import (
    diamonds,
    health,
    holds,
    keys,
    nivoda,
    pricing,
    purchases,
    triggers,
)

ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}

SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "HmacClientId": {"type": "apiKey", "in": "header", "name": "X-Client-Id"},
    "HmacTimestamp": {
        "type": "apiKey", "in": "header", "name": "X-Timestamp",
        "description": "Unix seconds, an integer, within 300 s of the server clock",
    },
    "HmacSignature": {
        "type": "apiKey", "in": "header", "name": "X-Signature",
        "description": (
            "hex HMAC-SHA256(secret, METHOD\\npath?query\\ntimestamp\\nhex SHA-256"
            "(body)); the path is the full percent-decoded path with /api/v2, the"
            " query is sent as is"
        ),
    },
}
SECURITY = [{"ApiKey": []}, {"HmacClientId": [], "HmacTimestamp": [], "HmacSignature": []}]


def _routers() -> list:
    """Return the routers of the app in include order; add new ones here."""
    return [
        health.router,
        diamonds.router,
        holds.router,
        purchases.router,
        triggers.router,
        pricing.router,
        keys.router,
        nivoda.router,
        analytics.router,
        dashboard.router,
    ]


def create_app(runtime=None, *, durable_client=None) -> FastAPI:
    """Create the API; `runtime` defaults to the process runtime at request time.

    `durable_client` serves the trigger routes outside the Functions host; the
    HTTP trigger passes its own client per request instead.
    """
    app = FastAPI(
        title="Diamond Opus API",
        version="2.0.0",
        description="Priced diamond inventory, kept in step with the supplier feed.",
        docs_url="/api/v2/docs",
        openapi_url="/api/v2/openapi.json",
        redoc_url=None,
    )
    if runtime is None:
        from shared.runtime import get_runtime as runtime_factory
    else:

        def runtime_factory():
            return runtime

    app.state.runtime_factory = runtime_factory
    app.state.durable_client = durable_client
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    for router in _routers():
        app.include_router(router)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """Build the OpenAPI document once, with security schemes and error envelopes."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _use_error_envelope(operation)
            if path.startswith("/api/v2/"):
                operation["security"] = SECURITY
    app.openapi_schema = document
    return document


def _use_error_envelope(operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = {
            "description": "Validation error",
            "content": {"application/json": {"schema": ERROR_SCHEMA_REF}},
        }
