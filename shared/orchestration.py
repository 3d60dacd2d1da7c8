"""Start a run together with its consolidation gate through a Durable client."""

from __future__ import annotations

import asyncio
import contextvars
import uuid

from shared.gate import gate_input
from shared.scheduler import StartedRun, start_run

GATE_ORCHESTRATOR = "consolidation_gate"

# The HTTP trigger puts its Durable client here for the API handlers; the local
# runner installs its in-process client the same way.
durable_client: contextvars.ContextVar = contextvars.ContextVar("durable_client")


async def start_run_with_gate(
    runtime, client, *, run_type: str | None, trace_id: str | None = None
) -> StartedRun:
    """Plan and enqueue a run, then start the gate that will consolidate it."""
    started = await asyncio.to_thread(
        start_run, runtime, run_type=run_type, trace_id=trace_id
    )
    await client.start_new(
        GATE_ORCHESTRATOR, instance_id=started.run_id,
        client_input=gate_input(runtime, started),
    )
    return started


async def restart_gate(runtime, client, run_id: str, *, force: bool = False) -> str:
    """Start a new gate instance for an existing run (after a retry or a failure).

    The caller sets the run's status to running first, after checking that the
    run may run again (see shared.run_control).
    """
    from shared import runs
    from shared.scheduler import StartedRun as Run

    def load() -> Run:
        with runtime.pool.connection() as conn:
            row = runs.get_run(conn, run_id)
            if row is None:
                raise LookupError(f"run {run_id} not found")
        return Run(row["run_id"], row["feed"], row["run_type"], row["updated_from"],
                   row["updated_to"], row["expected_count"], row["partition_count"], 0,
                   row["trace_id"] or "")

    run = await asyncio.to_thread(load)
    instance_id = f"{run_id}:resume:{uuid.uuid4().hex[:6]}"
    return await client.start_new(
        GATE_ORCHESTRATOR, instance_id=instance_id,
        client_input={**gate_input(runtime, run), "force": force},
    )
