"""HTTP API: one catch-all HTTP trigger that hands requests to the FastAPI app."""

from __future__ import annotations

import functools

import azure.durable_functions as df
import azure.functions as func

from shared.orchestration import durable_client

bp = df.Blueprint()

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@functools.cache
def _middleware() -> func.AsgiMiddleware:
    # Built on the first request so that a cold start does not import FastAPI
    # for the timer and queue triggers.
    from shared.api import create_app

    return func.AsgiMiddleware(create_app())


@bp.route(route="{*route}", methods=_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def http_api(req: func.HttpRequest, client) -> func.HttpResponse:
    token = durable_client.set(client)
    try:
        return await _middleware().handle_async(req)
    finally:
        durable_client.reset(token)
