"""Build the FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from shared.api.errors import install_error_handlers
from shared.api.routes import analytics, dashboard
from shared.api.routes import diamonds, health


def create_app(runtime=None) -> FastAPI:
    """Create the API; `runtime` defaults to the process runtime at request time."""
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
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(diamonds.router)
    app.include_router(analytics.router)
    app.include_router(dashboard.router)
    return app
