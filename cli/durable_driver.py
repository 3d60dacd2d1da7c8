"""Run Durable Functions orchestrations in process, through the SDK's replay engine.

The driver keeps each instance's history as the Durable extension would,
calls the orchestrator with it, executes the actions that come back
(activities, timers) and appends their completion events, until the
orchestrator is done. Replays are real: every step re-runs the generator from
the start of its history.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)

ORCHESTRATOR_STARTED = 12
EXECUTION_STARTED = 0
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_COMPLETED = 13

CALL_ACTIVITY = 0
CREATE_TIMER = 5


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(kind: int, moment: datetime, **extra) -> dict:
    return {"EventType": kind, "EventId": -1, "IsPlayed": False,
            "Timestamp": _timestamp(moment), **extra}


@dataclass
class Instance:
    instance_id: str
    name: str
    input: object
    status: str = "Pending"
    output: object = None
    error: str | None = None
    history: list[dict] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)


class OrchestrationDriver:
    """Drives orchestrators and activities looked up by function name."""

    def __init__(
        self,
        orchestrators: dict[str, Callable[[str], str]],
        activities: dict[str, Callable[[object], object]],
        *,
        max_parallel_activities: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._orchestrators = orchestrators
        self._activities = activities
        self._pool = ThreadPoolExecutor(max_parallel_activities, "activity")
        self._clock = clock
        self._sleep = sleep
        self.instances: dict[str, Instance] = {}

    def start(self, name: str, instance_id: str, client_input: object) -> Instance:
        if name not in self._orchestrators:
            raise LookupError(f"no orchestrator named {name!r}")
        instance = Instance(instance_id, name, client_input)
        self.instances[instance_id] = instance
        thread = threading.Thread(target=self.run, args=(instance,),
                                  name=f"orchestration-{instance_id}", daemon=True)
        thread.start()
        return instance

    def run(self, instance: Instance) -> Instance:
        """Drive one instance to completion in the calling thread."""
        instance.status = "Running"
        now = self._clock()
        instance.history = [
            _event(ORCHESTRATOR_STARTED, now),
            _event(EXECUTION_STARTED, now, Name=instance.name, Version="",
                   Input=json.dumps(instance.input)),
        ]
        handled = 0
        try:
            while True:
                state = self._replay(instance)
                if state.get("isDone"):
                    instance.output = state.get("output")
                    instance.status = "Completed"
                    break
                actions = [a for group in state.get("actions", []) for a in group]
                new_actions = actions[handled:]
                if not new_actions:
                    raise RuntimeError("orchestrator is waiting on nothing it scheduled")
                self._execute(instance, new_actions, first_id=handled)
                handled = len(actions)
        except Exception as exc:
            instance.status = "Failed"
            instance.error = str(exc)
            log.error("orchestration failed, instance_id=%s error=%s",
                      instance.instance_id, str(exc).splitlines()[0] if str(exc) else exc)
        finally:
            instance.finished.set()
        return instance

    def _replay(self, instance: Instance) -> dict:
        context = {"history": instance.history, "instanceId": instance.instance_id,
                   "isReplaying": False, "parentInstanceId": None,
                   "input": json.dumps(instance.input)}
        state = json.loads(self._orchestrators[instance.name](json.dumps(context)))
        for event in instance.history:
            event["IsPlayed"] = True
        return state

    def _execute(self, instance: Instance, actions: list[dict], *, first_id: int) -> None:
        events: list[dict] = []
        futures = []
        for task_id, action in enumerate(actions, start=first_id):
            kind = action["actionType"]
            if kind == CALL_ACTIVITY:
                name = action["functionName"]
                events.append(_event(TASK_SCHEDULED, self._clock(), Name=name,
                                     EventId=task_id))
                futures.append((task_id, self._pool.submit(self._call, name,
                                                           action.get("input"))))
            elif kind == CREATE_TIMER:
                events.append(_event(TIMER_CREATED, self._clock(),
                                     FireAt=action["fireAt"], EventId=task_id))
                futures.append((task_id, action["fireAt"]))
            else:
                raise NotImplementedError(f"action type {kind} is not supported locally")
        completions = [self._complete(task_id, pending) for task_id, pending in futures]
        instance.history += [_event(ORCHESTRATOR_COMPLETED, self._clock()), *events,
                             _event(ORCHESTRATOR_STARTED, self._clock()), *completions]

    def _complete(self, task_id: int, pending) -> dict:
        if isinstance(pending, str):
            fire_at = datetime.fromisoformat(pending.replace("Z", "+00:00"))
            delay = (fire_at - self._clock()).total_seconds()
            if delay > 0:
                self._sleep(delay)
            return _event(TIMER_FIRED, max(self._clock(), fire_at), TimerId=task_id,
                          FireAt=pending)
        try:
            result = pending.result()
        except Exception as exc:
            return _event(TASK_FAILED, self._clock(), TaskScheduledId=task_id,
                          Reason=str(exc) or type(exc).__name__,
                          Details=traceback.format_exc(limit=3))
        return _event(TASK_COMPLETED, self._clock(), TaskScheduledId=task_id,
                      Result=json.dumps(result))

    def _call(self, name: str, input_text: str | None):
        if name not in self._activities:
            raise LookupError(f"no activity named {name!r}")
        payload = json.loads(input_text) if input_text is not None else None
        return self._activities[name](payload)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
