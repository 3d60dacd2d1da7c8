"""Telemetry: run ids on every log record and span, and the pipeline's metrics.

With APPLICATIONINSIGHTS_CONNECTION_STRING set, logs, spans and metrics go to
Application Insights through the Azure Monitor OpenTelemetry distro, and the
ids bound here appear as customDimensions. Without it nothing is exported, but
log records still carry the ids. A run's trace id travels inside each work
item, so the scheduler, every page and the gate share one operation id.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading

from opentelemetry import metrics, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

log = logging.getLogger(__name__)

ID_FIELDS = ("run_id", "partition_id", "feed", "trace_id")

_ids: contextvars.ContextVar[dict] = contextvars.ContextVar("telemetry_ids", default={})
_configured = threading.Event()

tracer = trace.get_tracer("diamond_opus")
meter = metrics.get_meter("diamond_opus")
pages_fetched = meter.create_counter("pages_fetched", unit="1",
                                     description="supplier pages stored by workers")
stones_upserted = meter.create_counter("stones_upserted", unit="1",
                                       description="raw stones written by workers")
supplier_errors = meter.create_counter("supplier_errors", unit="1",
                                       description="supplier request failures by kind")
consolidation_rate = meter.create_histogram(
    "consolidation_rows_per_second", unit="1/s", description="consolidation throughput")
run_duration = meter.create_histogram("run_duration_seconds", unit="s",
                                      description="run start to completion or failure")


class IdsFilter(logging.Filter):
    """Copy the bound ids onto each log record (customDimensions in Azure)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _ids.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def configure_telemetry(settings) -> None:
    """Install the ids filter and, when configured, the Azure Monitor exporters."""
    if _configured.is_set():
        return
    _configured.set()
    for handler in logging.getLogger().handlers or [logging.lastResort]:
        if handler is not None:
            handler.addFilter(IdsFilter())
    logging.getLogger().addFilter(IdsFilter())
    if settings.applicationinsights_connection_string:
        # Imported only here: the distro is heavy and a cold start without it
        # should not pay for it.
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            connection_string=settings.applicationinsights_connection_string,
            logger_name="",
        )
        log.info("telemetry exported to Application Insights")


def current_ids() -> dict:
    return dict(_ids.get())


@contextlib.contextmanager
def run_span(name: str, **ids):
    """Bind ids for logs and open a span under the run's trace id."""
    bound = {k: v for k, v in {**_ids.get(), **ids}.items() if v is not None}
    token = _ids.set(bound)
    parent = _parent_context(bound.get("trace_id"))
    try:
        with tracer.start_as_current_span(name, context=parent) as span:
            for key, value in bound.items():
                span.set_attribute(key, value)
            yield span
    finally:
        _ids.reset(token)


def _parent_context(trace_id: str | None):
    """Build a remote parent with the run's trace id, so that a run's spans share it."""
    try:
        trace_number = int(trace_id or "", 16)
    except ValueError:
        return None
    if not 0 < trace_number < 2**128:
        return None
    parent = SpanContext(trace_id=trace_number, span_id=1, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))
