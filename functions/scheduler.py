"""Scheduler: a timer trigger that starts a sync run and its consolidation gate."""

from __future__ import annotations

import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from shared.orchestration import start_run_with_gate
from shared.runtime import get_runtime
from shared.scheduler import RunAlreadyActiveError
from shared.telemetry import run_span

log = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SYNC_SCHEDULE%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def scheduler(timer: func.TimerRequest, client) -> None:
    if timer.past_due:
        log.warning("scheduler timer is past due; starting the run now")
    runtime = get_runtime()
    trace_id = uuid.uuid4().hex
    with run_span("scheduler.start_run", feed=runtime.settings.feed, trace_id=trace_id):
        try:
            await start_run_with_gate(runtime, client, run_type=None, trace_id=trace_id)
        except RunAlreadyActiveError as exc:
            log.warning("scheduled run skipped, run_id=%s: %s", exc.run_id, exc)

