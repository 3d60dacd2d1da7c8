"""Telemetry: spans and log records carry the run's ids."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    telemetry.tracer = provider.get_tracer("diamond_opus")
    yield exporter


def test_run_span_carries_run_ids(spans):
    spans.clear()
    with telemetry.run_span("worker.page", run_id="r1", partition_id=3, feed="nivoda",
                            trace_id=TRACE_ID):
        pass
    (span,) = spans.get_finished_spans()
    assert span.attributes["run_id"] == "r1"
    assert span.attributes["partition_id"] == 3
    assert span.attributes["feed"] == "nivoda"


def test_run_span_joins_the_runs_trace(spans):
    spans.clear()
    with telemetry.run_span("scheduler.start_run", trace_id=TRACE_ID):
        with telemetry.run_span("worker.page", run_id="r1"):
            pass
    trace_ids = {format(s.context.trace_id, "032x") for s in spans.get_finished_spans()}
    assert trace_ids == {TRACE_ID}


def test_log_records_carry_bound_ids(caplog):
    caplog.handler.addFilter(telemetry.IdsFilter())
    with caplog.at_level(logging.INFO, logger="shared.worker"):
        with telemetry.run_span("worker.page", run_id="r2", partition_id=7, feed="nivoda"):
            logging.getLogger("shared.worker").info("page stored")
    (record,) = [r for r in caplog.records if r.getMessage() == "page stored"]
    assert record.run_id == "r2"
    assert record.partition_id == 7
    assert record.feed == "nivoda"


def test_ids_unbound_after_span():
    with telemetry.run_span("x", run_id="r3"):
        assert telemetry.current_ids()["run_id"] == "r3"
    assert "run_id" not in telemetry.current_ids()


def test_worker_function_spans_carry_work_item_ids(spans, runtime, function_index):
    from azure.functions.servicebus import ServiceBusMessage

    from shared.local_queue import LocalQueue

    runtime._overrides["sender"] = LocalQueue()
    body = (b'{"feed": "nivoda", "run_id": "missing-run", "partition_id": 2,'
            b' "price_min_cents": 0, "expected_count": 10, "offset": 0, "page_size": 50,'
            b' "updated_from": "2000-01-01T00:00:00Z", "updated_to": "2026-01-01T00:00:00Z",'
            b' "trace_id": "' + TRACE_ID.encode() + b'"}')
    message = ServiceBusMessage(body=body, message_id="m1", delivery_count=1,
                                application_properties={}, user_properties={})
    spans.clear()
    function_index["worker"].get_user_function()(message)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "worker.page"]
    assert span.attributes["run_id"] == "missing-run"
    assert span.attributes["partition_id"] == 2
    assert format(span.context.trace_id, "032x") == TRACE_ID
