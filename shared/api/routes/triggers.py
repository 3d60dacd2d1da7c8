"""Operator triggers: start, consolidate, retry, resume and cancel runs (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from shared import run_control
from shared.api.deps import get_runtime_dep, require
from shared.api.errors import ApiError
from shared.api.models import ErrorEnvelope, RunIdRequest, RunStartRequest, TriggerResponse
from shared.orchestration import durable_client
from shared.scheduler import RunAlreadyActiveError

router = APIRouter(
    prefix="/api/v2/triggers",
    tags=["triggers"],
    dependencies=[Depends(require("admin"))],
    responses={
        status: {"model": ErrorEnvelope} for status in (401, 403, 404, 409, 422, 429, 503)
    },
)


def _client(request: Request):
    # The HTTP trigger sets the context variable; tests and the local server
    # pass a client to create_app instead.
    client = durable_client.get(None) or request.app.state.durable_client
    if client is None:
        raise ApiError(503, "no Durable Functions client is available in this process")
    return client


@router.post("/run", response_model=TriggerResponse, status_code=202,
             summary="Start a full or incremental run")
async def start_run(
    body: RunStartRequest, request: Request, runtime=Depends(get_runtime_dep)
) -> TriggerResponse:
    client = _client(request)
    try:
        started = await run_control.start(runtime, client, body.run_type)
    except RunAlreadyActiveError as exc:
        raise ApiError(409, str(exc), details={"active_run_id": exc.run_id}) from None
    return TriggerResponse(
        run_id=started.run_id, action="started", instance_id=started.run_id,
        details={"run_type": started.run_type, "expected_count": started.expected_count,
                 "partition_count": started.partition_count},
    )


@router.post("/consolidate", response_model=TriggerResponse, status_code=202,
             summary="Consolidate a run now, partial if partitions are unfinished")
async def consolidate(
    body: RunIdRequest, request: Request, runtime=Depends(get_runtime_dep)
) -> TriggerResponse:
    client = _client(request)
    instance_id = await _control(run_control.force_consolidate(runtime, client, body.run_id))
    return TriggerResponse(run_id=body.run_id, action="consolidating", instance_id=instance_id)


@router.post("/retry-failed", response_model=TriggerResponse, status_code=202,
             summary="Reopen a run's failed partitions and wait for them again")
async def retry_failed(
    body: RunIdRequest, request: Request, runtime=Depends(get_runtime_dep)
) -> TriggerResponse:
    client = _client(request)
    partition_ids, instance_id = await _control(
        run_control.retry_failed(runtime, client, body.run_id)
    )
    return TriggerResponse(
        run_id=body.run_id, action="retrying", instance_id=instance_id,
        details={"partition_ids": partition_ids},
    )


@router.post("/resume", response_model=TriggerResponse, status_code=202,
             summary="Start a new consolidation gate for a run")
async def resume(
    body: RunIdRequest, request: Request, runtime=Depends(get_runtime_dep)
) -> TriggerResponse:
    client = _client(request)
    instance_id = await _control(run_control.resume(runtime, client, body.run_id))
    return TriggerResponse(run_id=body.run_id, action="resumed", instance_id=instance_id)


@router.post("/cancel", response_model=TriggerResponse, summary="Cancel an active run")
async def cancel(body: RunIdRequest, runtime=Depends(get_runtime_dep)) -> TriggerResponse:
    try:
        await run_in_threadpool(run_control.cancel, runtime, body.run_id)
    except run_control.RunControlError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return TriggerResponse(run_id=body.run_id, action="cancelled")


async def _control(coroutine):
    try:
        return await coroutine
    except run_control.RunControlError as exc:
        raise ApiError(exc.status, str(exc), details=exc.details) from None
    except LookupError as exc:
        raise ApiError(404, str(exc).strip("'\"")) from None
