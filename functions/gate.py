"""Consolidation gate: a Durable Functions orchestrator and its activities.

The orchestrator is replayed from its history many times, so it reads time
only from the context, does no I/O itself and logs only when not replaying.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import azure.durable_functions as df

from shared import gate
from shared.runs import ProgressSummary
from shared.runtime import get_runtime
from shared.telemetry import run_span

log = logging.getLogger(__name__)

bp = df.Blueprint()

@bp.orchestration_trigger(context_name="context")
def consolidation_gate(context: df.DurableOrchestrationContext):
    run = context.get_input(expected_type=dict)
    run_id = run["run_id"]
    deadline = context.current_utc_datetime + timedelta(seconds=run["timeout_seconds"])

    force = bool(run.get("force"))
    progress = yield context.call_activity(gate_progress, run_id)
    while not (force or progress["finished"]) and progress["run_status"] != "cancelled":
        if context.current_utc_datetime >= deadline:
            reason = (f"partitions still unfinished after {run['timeout_seconds']:.0f} s:"
                      f" {progress['done']} done, {progress['failed']} failed of"
                      f" {progress['total']}")
            yield context.call_activity(gate_fail_run, _failure(run_id, "run_stuck", reason))
            return {"run_id": run_id, "decision": "timed_out"}
        next_poll = context.current_utc_datetime + timedelta(seconds=run["poll_seconds"])
        yield context.create_timer(min(next_poll, deadline))
        progress = yield context.call_activity(gate_progress, run_id)

    if progress["run_status"] == "cancelled":
        return {"run_id": run_id, "decision": "cancelled"}
    decision = gate.decide(_summary(progress), Decimal(run["threshold"]), force=force)
    if not context.is_replaying:
        log.info("gate decision, run_id=%s decision=%s done=%s failed=%s total=%s",
                 run_id, decision, progress["done"], progress["failed"], progress["total"])
    if decision == gate.SKIP:
        reason = (f"only {progress['done']} of {progress['total']} partitions succeeded,"
                  f" under the {Decimal(run['threshold']):.0%} threshold")
        yield context.call_activity(gate_fail_run, _failure(run_id, "run_failed", reason))
        return {"run_id": run_id, "decision": decision}

    partial = decision == gate.CONSOLIDATE_PARTIAL
    if partial and not force and run["partial_delay_seconds"] > 0:
        delay = timedelta(seconds=run["partial_delay_seconds"])
        yield context.create_timer(context.current_utc_datetime + delay)
    outcome = yield from _consolidate(context, run, partial)
    return {"run_id": run_id, "decision": decision, **outcome}


def _consolidate(context, run: dict, partial: bool):
    run_id = run["run_id"]
    try:
        yield context.call_activity(gate_prepare, run_id)
        while True:
            shares = yield context.task_all(
                [context.call_activity(gate_consolidate, run_id)
                 for _ in range(run["parallelism"])]
            )
            if all(share["remaining"] == 0 for share in shares):
                break
        result = yield context.call_activity(
            gate_finalize, {"run_id": run_id, "partial": partial}
        )
    except Exception as exc:
        reason = f"consolidation failed: {_first_line(exc)}"
        yield context.call_activity(
            gate_fail_run, _failure(run_id, "consolidation_failed", reason)
        )
        return {"status": "failed", "reason": reason}
    return result


def _failure(run_id: str, kind: str, reason: str) -> dict:
    return {"run_id": run_id, "kind": kind, "reason": reason}


def _summary(progress: dict) -> ProgressSummary:
    return ProgressSummary(progress["total"], progress["done"], progress["failed"],
                           progress["drifted"], progress["stones_fetched"],
                           progress["pages_fetched"])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _activity_span(name: str, run_id: str):
    runtime = get_runtime()
    return runtime, run_span(f"gate.{name}", run_id=run_id, feed=runtime.settings.feed,
                             trace_id=gate.trace_id_of(runtime, run_id))


@bp.activity_trigger(input_name="run_id")
def gate_progress(run_id: str) -> dict:
    runtime, span = _activity_span("progress", run_id)
    with span:
        return gate.read_progress(runtime, run_id)


@bp.activity_trigger(input_name="run_id")
def gate_prepare(run_id: str) -> dict:
    runtime, span = _activity_span("prepare", run_id)
    with span:
        return gate.prepare_consolidation(runtime, run_id)


@bp.activity_trigger(input_name="run_id")
def gate_consolidate(run_id: str) -> dict:
    runtime, span = _activity_span("consolidate", run_id)
    with span:
        return gate.consolidate_share(runtime, run_id)


@bp.activity_trigger(input_name="payload")
def gate_finalize(payload: dict) -> dict:
    runtime, span = _activity_span("finalize", payload["run_id"])
    with span:
        return gate.finalize_run(runtime, payload["run_id"], payload["partial"])


@bp.activity_trigger(input_name="payload")
def gate_fail_run(payload: dict) -> dict:
    runtime, span = _activity_span("fail_run", payload["run_id"])
    with span:
        return gate.fail_run(runtime, payload["run_id"], payload["kind"],
                             payload["reason"])
