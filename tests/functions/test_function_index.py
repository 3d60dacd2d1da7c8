"""The app's functions as the Functions host would index them."""

from __future__ import annotations


def _bindings(function_index, name: str) -> list[dict]:
    return function_index[name].get_dict_repr()["bindings"]


def _trigger(function_index, name: str) -> dict:
    return next(b for b in _bindings(function_index, name) if "Trigger" in b["type"]
                or b["type"] == "orchestrationTrigger")


def test_index_lists_every_function(function_index):
    assert set(function_index) == {
        "scheduler", "worker", "http_api", "consolidation_gate", "gate_progress",
        "gate_prepare", "gate_consolidate", "gate_finalize", "gate_fail_run",
    }


def test_scheduler_timer_reads_schedule_setting(function_index):
    trigger = _trigger(function_index, "scheduler")
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "%SYNC_SCHEDULE%"


def test_scheduler_has_durable_client(function_index):
    types = [b["type"] for b in _bindings(function_index, "scheduler")]
    assert "durableClient" in types


def test_worker_listens_on_work_items_queue(function_index):
    trigger = _trigger(function_index, "worker")
    assert trigger["type"] == "serviceBusTrigger"
    assert trigger["queueName"] == "work-items"
    assert trigger["connection"] == "ServiceBusConnection"


def test_gate_is_an_orchestrator(function_index):
    assert _trigger(function_index, "consolidation_gate")["type"] == "orchestrationTrigger"


def test_gate_steps_are_activities(function_index):
    for name in ("gate_progress", "gate_prepare", "gate_consolidate", "gate_finalize",
                 "gate_fail_run"):
        assert _trigger(function_index, name)["type"] == "activityTrigger", name


def test_http_api_catches_every_route(function_index):
    trigger = _trigger(function_index, "http_api")
    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == "{*route}"
    assert {m.upper() for m in map(str, trigger["methods"])} >= {"GET", "POST", "DELETE"}
