"""Liveness and database reachability."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from shared.api.deps import get_runtime_dep
from shared.api.models import Health

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Service health")
def health(runtime=Depends(get_runtime_dep)):
    try:
        with runtime.pool.connection(timeout=5) as conn:
            conn.execute("select 1")
    except Exception as exc:
        log.warning("health check: database unreachable: %s", exc)
        return JSONResponse({"status": "degraded", "database": "unreachable"},
                            status_code=503)
    return Health(status="ok", database="ok")
