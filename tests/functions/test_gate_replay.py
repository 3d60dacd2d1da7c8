"""The consolidation gate, replayed by the Durable SDK from hand-built histories.

Each test plays the part of the Durable extension: it calls the orchestrator
with a history, responds to the actions it returns with completion events,
and replays again, episode by episode, until the orchestration is done.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

ORCHESTRATOR_STARTED = 12
EXECUTION_STARTED = 0
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_COMPLETED = 13

START = datetime(2026, 1, 1, 2, 0, 0, tzinfo=UTC)
RUN_INPUT = {
    "run_id": "nivoda-run-1",
    "feed": "nivoda",
    "run_type": "full",
    "poll_seconds": 10,
    "partial_delay_seconds": 300,
    "timeout_seconds": 60,
    "threshold": "0.70",
    "parallelism": 2,
}


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _event(kind: int, moment: datetime, **extra) -> dict:
    return {
        "EventType": kind,
        "EventId": -1,
        "IsPlayed": False,
        "Timestamp": _timestamp(moment),
        **extra,
    }


def _progress(done: int, failed: int, total: int, status: str = "running") -> dict:
    return {
        "total": total,
        "done": done,
        "failed": failed,
        "drifted": 0,
        "stones_fetched": 100 * done,
        "pages_fetched": 2 * done,
        "finished": done + failed == total,
        "run_status": status,
    }


class Failure(Exception):
    """An activity error that becomes a TaskFailed event."""


class GateReplay:
    """A hand-driven history of one `consolidation_gate` instance."""

    def __init__(self, function_index, run_input: dict) -> None:
        self._orchestrator = function_index["consolidation_gate"].get_user_function()
        self.input = run_input
        self.now = START
        self.history = [
            _event(ORCHESTRATOR_STARTED, START),
            _event(
                EXECUTION_STARTED,
                START,
                Name="consolidation_gate",
                Version="",
                Input=json.dumps(run_input),
            ),
        ]
        self.handled = 0
        self.calls: list[tuple[str, object]] = []
        self.timers: list[tuple[datetime, datetime]] = []  # (created at, fire at)

    def replay(self) -> dict:
        context = {
            "history": self.history,
            "instanceId": self.input["run_id"],
            "isReplaying": False,
            "parentInstanceId": None,
            "input": json.dumps(self.input),
        }
        return json.loads(self._orchestrator(json.dumps(context)))

    def run(
        self,
        answer: Callable[[str, object], object],
        *,
        max_episodes: int = 50,
        replay_twice: bool = True,
    ) -> dict:
        """Drive the orchestration to its end, checking determinism on the way.

        With `replay_twice`, every history is replayed a second time and must give
        the same state; the extension itself replays each history once.
        """
        previous_actions: list = []
        for _ in range(max_episodes):
            state = self.replay()
            if replay_twice:
                assert self.replay() == state, "a second replay of one history differs"
            actions = [action for group in state["actions"] for action in group]
            assert actions[: len(previous_actions)] == previous_actions
            previous_actions = actions
            if state["isDone"]:
                return state
            self._answer(actions[self.handled :], answer)
            self.handled = len(actions)
        raise AssertionError(f"orchestration not done after {max_episodes} episodes")

    def _answer(self, actions: list[dict], answer) -> None:
        for event in self.history:
            event["IsPlayed"] = True
        scheduled, completions = [], []
        created_at = self.now
        for task_id, action in enumerate(actions, start=self.handled):
            if action["actionType"] == 5:
                fire_at = _parse(action["fireAt"])
                self.timers.append((created_at, fire_at))
                self.now = max(self.now, fire_at)
                scheduled.append(
                    _event(
                        TIMER_CREATED,
                        created_at,
                        EventId=task_id,
                        FireAt=action["fireAt"],
                    )
                )
                completions.append(
                    _event(
                        TIMER_FIRED, self.now, TimerId=task_id, FireAt=action["fireAt"]
                    )
                )
                continue
            assert action["actionType"] == 0, action
            name = action["functionName"]
            payload = json.loads(action["input"]) if action.get("input") else None
            self.calls.append((name, payload))
            scheduled.append(
                _event(TASK_SCHEDULED, created_at, Name=name, EventId=task_id)
            )
            self.now += timedelta(seconds=1)
            try:
                result = answer(name, payload)
            except Failure as exc:
                completions.append(
                    _event(
                        TASK_FAILED,
                        self.now,
                        TaskScheduledId=task_id,
                        Reason=str(exc),
                        Details="traceback",
                    )
                )
            else:
                completions.append(
                    _event(
                        TASK_COMPLETED,
                        self.now,
                        TaskScheduledId=task_id,
                        Result=json.dumps(result),
                    )
                )
        self.history += [
            _event(ORCHESTRATOR_COMPLETED, created_at),
            *scheduled,
            _event(ORCHESTRATOR_STARTED, self.now),
            *completions,
        ]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def make_answer(progress: list[dict], *, consolidate_fails: bool = False):
    """Return activity results: `progress` in turn (the last repeats), fixed otherwise."""
    answers = iter(progress)
    last = {"value": progress[0]}

    def answer(name: str, payload):
        if name == "gate_progress":
            last["value"] = next(answers, last["value"])
            return last["value"]
        if name == "gate_prepare":
            return {"released": 0}
        if name == "gate_consolidate":
            if consolidate_fails:
                raise Failure("database down")
            return {
                "batches": 1,
                "claimed": 5,
                "upserted": 5,
                "failed": 0,
                "seconds": 0.1,
                "remaining": 0,
            }
        if name == "gate_finalize":
            return {
                "status": "partial" if payload["partial"] else "completed",
                "retired": 0,
                "consolidated": 5,
                "watermark_advanced": True,
            }
        if name == "gate_fail_run":
            return {"status": "failed", "kind": payload["kind"]}
        raise AssertionError(f"unexpected activity {name}")

    return answer


CONSOLIDATION = [
    "gate_prepare",
    "gate_consolidate",
    "gate_consolidate",
    "gate_finalize",
]


def test_gate_all_done_consolidates_now(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(10, 0, 10)]))

    assert state["output"]["decision"] == "consolidate"
    assert state["output"]["status"] == "completed"
    assert gate.names() == ["gate_progress", *CONSOLIDATION]
    assert gate.calls[-1] == (
        "gate_finalize",
        {"run_id": "nivoda-run-1", "partial": False},
    )
    assert gate.timers == []


def test_gate_waits_by_polling_until_finished(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(
        make_answer([_progress(3, 0, 10), _progress(7, 0, 10), _progress(10, 0, 10)])
    )

    assert state["output"]["decision"] == "consolidate"
    assert gate.names()[:3] == ["gate_progress"] * 3
    assert len(gate.timers) == 2
    for created_at, fire_at in gate.timers:
        assert fire_at - created_at == timedelta(seconds=10)


def test_gate_partial_waits_five_minutes(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(8, 2, 10)]))

    assert state["output"]["decision"] == "consolidate_partial"
    assert state["output"]["status"] == "partial"
    assert len(gate.timers) == 1
    created_at, fire_at = gate.timers[0]
    assert fire_at - created_at == timedelta(seconds=300)
    assert gate.names() == ["gate_progress", *CONSOLIDATION]
    assert gate.calls[-1] == (
        "gate_finalize",
        {"run_id": "nivoda-run-1", "partial": True},
    )


def test_gate_partial_at_exact_threshold(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(7, 3, 10)]))

    assert state["output"]["decision"] == "consolidate_partial"


def test_gate_under_threshold_skips_and_fails(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(6, 4, 10)]))

    assert state["output"] == {"run_id": "nivoda-run-1", "decision": "skip"}
    assert gate.names() == ["gate_progress", "gate_fail_run"]
    failure = gate.calls[-1][1]
    assert failure["kind"] == "run_failed"
    assert "6 of 10" in failure["reason"]
    assert "gate_finalize" not in gate.names()


def test_gate_consolidation_failure_fails_run(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(10, 0, 10)], consolidate_fails=True))

    assert state["output"]["status"] == "failed"
    assert "database down" in state["output"]["reason"]
    assert gate.names() == [
        "gate_progress",
        "gate_prepare",
        "gate_consolidate",
        "gate_consolidate",
        "gate_fail_run",
    ]
    failure = gate.calls[-1][1]
    assert failure["kind"] == "consolidation_failed"
    assert "gate_finalize" not in gate.names()


def test_gate_never_finishing_times_out(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(3, 1, 10)]))

    assert state["output"] == {"run_id": "nivoda-run-1", "decision": "timed_out"}
    assert gate.names()[-1] == "gate_fail_run"
    failure = gate.calls[-1][1]
    assert failure["kind"] == "run_stuck"
    assert "3 done, 1 failed of 10" in failure["reason"]
    deadline = START + timedelta(seconds=60)
    assert all(fire_at <= deadline for _, fire_at in gate.timers)
    assert gate.timers[-1][1] == deadline
    assert "gate_prepare" not in gate.names()


def test_gate_forced_consolidates_unfinished_run(function_index):
    gate = GateReplay(function_index, {**RUN_INPUT, "force": True})

    state = gate.run(make_answer([_progress(2, 1, 10)]))

    assert state["output"]["decision"] == "consolidate_partial"
    assert gate.timers == []
    assert gate.names() == ["gate_progress", *CONSOLIDATION]
    assert gate.calls[-1][1]["partial"] is True


def test_gate_cancelled_run_stops(function_index):
    gate = GateReplay(function_index, RUN_INPUT)

    state = gate.run(make_answer([_progress(2, 0, 10, status="cancelled")]))

    assert state["output"] == {"run_id": "nivoda-run-1", "decision": "cancelled"}
    assert gate.names() == ["gate_progress"]


def test_gate_clock_comes_from_history(function_index):
    first = GateReplay(function_index, RUN_INPUT)
    first.run(make_answer([_progress(8, 2, 10)]))
    second = GateReplay(function_index, RUN_INPUT)
    second.run(make_answer([_progress(8, 2, 10)]))

    assert first.timers == second.timers
    assert first.timers[0][1] == START + timedelta(seconds=1 + 300)


@pytest.mark.parametrize("progress", [[_progress(10, 0, 10)], [_progress(6, 4, 10)]])
def test_gate_logs_decision_once(function_index, caplog, progress):
    gate = GateReplay(function_index, RUN_INPUT)

    with caplog.at_level(logging.INFO, logger="functions.gate"):
        gate.run(make_answer(progress), replay_twice=False)

    decisions = [
        r for r in caplog.records if r.getMessage().startswith("gate decision")
    ]
    assert len(decisions) == 1


def test_gate_prepare_releases_stuck_claims(runtime, function_index):
    from shared import runs
    from shared.partitioning import PartitionPlan

    with runtime.pool.connection() as conn:
        runs.create_run(
            conn,
            run_id="run-stuck",
            feed="nivoda",
            run_type="full",
            updated_from=START,
            updated_to=START,
            plan=PartitionPlan(total=0, partitions=[], buckets=[], count_queries=0),
            trace_id="t",
        )
        for stone, minutes in (("stone-old", 45), ("stone-new", 5)):
            conn.execute(
                "insert into raw_diamonds_nivoda (supplier_stone_id, run_id, payload,"
                " payload_hash, status, claimed_at, claimed_by, last_seen_run_id)"
                " values (%s, 'run-stuck', '{}', 'h', 'processing',"
                " now() - make_interval(mins => %s), 'dead-replica', 'run-stuck')",
                (stone, minutes),
            )
        conn.commit()

    result = function_index["gate_prepare"].get_user_function()("run-stuck")

    assert result["released"] == 1
    assert result["deferred_indexes"] == []
    with runtime.pool.connection() as conn:
        rows = dict(
            conn.execute(
                "select supplier_stone_id, status from raw_diamonds_nivoda"
            ).fetchall()
        )
        status = conn.execute(
            "select status from run_metadata where run_id = 'run-stuck'"
        ).fetchone()[0]
    assert rows == {"stone-old": "pending", "stone-new": "processing"}
    assert status == "consolidating"


def _search_indexes(conn) -> list[str]:
    rows = conn.execute(
        "select indexname from pg_indexes where tablename = 'diamonds'"
        " and indexname like 'diamonds_api_%' order by 1"
    ).fetchall()
    return [row[0] for row in rows]


def _create_run_with_pending(runtime, run_id: str, stones: int) -> None:
    from shared import runs
    from shared.partitioning import PartitionPlan

    with runtime.pool.connection() as conn:
        runs.create_run(
            conn, run_id=run_id, feed="nivoda", run_type="full", updated_from=START,
            updated_to=START, trace_id="t",
            plan=PartitionPlan(total=0, partitions=[], buckets=[], count_queries=0),
        )
        conn.execute(
            "with raw as (insert into raw_diamonds_nivoda (supplier_stone_id, run_id,"
            " payload, payload_hash, last_seen_run_id)"
            " select 'stone-' || g, %s, '{}', 'h', %s from generate_series(1, %s) g"
            " returning id)"
            " insert into raw_diamonds_nivoda_pending select id from raw",
            (run_id, run_id, stones),
        )
        conn.commit()


def test_prepare_defers_indexes_for_bulk(runtime, function_index):
    runtime.settings = runtime.settings.model_copy(update={"bulk_load_min_rows": 3})
    _create_run_with_pending(runtime, "run-bulk", 4)
    with runtime.pool.connection() as conn:
        indexes = _search_indexes(conn)

    prepared = function_index["gate_prepare"].get_user_function()("run-bulk")

    assert prepared["pending"] == 4
    assert prepared["deferred_indexes"] == indexes
    with runtime.pool.connection() as conn:
        assert _search_indexes(conn) == []
        status = conn.execute(
            "select status from run_metadata where run_id = 'run-bulk'"
        ).fetchone()[0]
    assert status == "consolidating"

    function_index["gate_finalize"].get_user_function()(
        {"run_id": "run-bulk", "partial": False})

    with runtime.pool.connection() as conn:
        assert _search_indexes(conn) == indexes
        assert conn.execute("select count(*) from deferred_indexes").fetchone()[0] == 0


def test_prepare_keeps_indexes_for_small_load(runtime, function_index):
    _create_run_with_pending(runtime, "run-small", 4)

    prepared = function_index["gate_prepare"].get_user_function()("run-small")

    assert prepared["deferred_indexes"] == []
    with runtime.pool.connection() as conn:
        assert len(_search_indexes(conn)) == 5


def test_prepare_rebuilds_leftover_indexes(runtime, function_index):
    from shared import bulk_load

    with runtime.pool.connection() as conn:
        bulk_load.defer_search_indexes(conn)
    _create_run_with_pending(runtime, "run-after-crash", 4)

    prepared = function_index["gate_prepare"].get_user_function()("run-after-crash")

    assert prepared["deferred_indexes"] == []
    with runtime.pool.connection() as conn:
        assert len(_search_indexes(conn)) == 5


def test_failed_run_rebuilds_indexes(runtime, function_index):
    runtime.settings = runtime.settings.model_copy(update={"bulk_load_min_rows": 1})
    _create_run_with_pending(runtime, "run-broken", 2)
    function_index["gate_prepare"].get_user_function()("run-broken")

    function_index["gate_fail_run"].get_user_function()(
        {"run_id": "run-broken", "kind": "consolidation_failed", "reason": "boom"})

    with runtime.pool.connection() as conn:
        assert len(_search_indexes(conn)) == 5


class RecordingAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, kind: str, subject: str, body: str, **ids: object) -> bool:
        self.sent.append((kind, body))
        return True


def test_failed_run_recorded_when_rebuild_fails(runtime, function_index):
    alerts = RecordingAlerts()
    runtime._overrides["alerts"] = alerts
    runtime.settings = runtime.settings.model_copy(update={"bulk_load_min_rows": 1})
    _create_run_with_pending(runtime, "run-no-rebuild", 2)
    function_index["gate_prepare"].get_user_function()("run-no-rebuild")
    with runtime.pool.connection() as conn:
        definition = conn.execute(
            "select definition from deferred_indexes"
            " where index_name = 'diamonds_api_price'"
        ).fetchone()[0]
        conn.execute("update deferred_indexes set definition = 'create index broken"
                     " on nowhere (x)' where index_name = 'diamonds_api_price'")
        conn.commit()

    result = function_index["gate_fail_run"].get_user_function()(
        {"run_id": "run-no-rebuild", "kind": "consolidation_failed", "reason": "boom"})

    assert result == {"status": "failed", "kind": "consolidation_failed"}
    with runtime.pool.connection() as conn:
        status = conn.execute(
            "select status from run_metadata where run_id = 'run-no-rebuild'"
        ).fetchone()[0]
        indexes = _search_indexes(conn)
        waiting = conn.execute("select index_name from deferred_indexes").fetchall()
        conn.execute("update deferred_indexes set definition = %s", (definition,))
        conn.commit()
    assert status == "failed"
    assert len(indexes) == 4
    assert waiting == [("diamonds_api_price",)]
    assert [kind for kind, _ in alerts.sent] == ["consolidation_failed"]
    assert "diamonds_api_price" in alerts.sent[0][1]
