"""Worker: a Service Bus queue trigger that fetches one page per invocation."""

from __future__ import annotations

import logging

import azure.functions as func
from pydantic import ValidationError

from shared.progress import log_error
from shared.runtime import get_runtime
from shared.telemetry import run_span
from shared.work_item import WorkItem
from shared.worker import process_work_item

log = logging.getLogger(__name__)

bp = func.Blueprint()

WORK_ITEMS_QUEUE = "work-items"


@bp.service_bus_queue_trigger(
    arg_name="message", queue_name=WORK_ITEMS_QUEUE, connection="ServiceBusConnection"
)
def worker(message: func.ServiceBusMessage) -> None:
    runtime = get_runtime()
    body = message.get_body()
    try:
        item = WorkItem.from_body(body)
    except ValidationError as exc:
        # Redelivery cannot fix a malformed message: record it and complete it.
        _record_malformed(runtime, message, body, exc)
        return
    with run_span("worker.page", run_id=item.run_id, partition_id=item.partition_id,
                  feed=item.feed, trace_id=item.trace_id, offset=item.offset):
        process_work_item(runtime, item, delivery_count=message.delivery_count or 1)


def _record_malformed(runtime, message, body: bytes, exc: ValidationError) -> None:
    message_id = getattr(message, "message_id", None)
    reason = f"malformed work item: {exc.error_count()} errors, first: {exc.errors()[0]['msg']}"
    log.error("work item rejected, message_id=%s reason=%s", message_id, reason)
    with runtime.pool.connection() as conn:
        log_error(conn, "worker", reason,
                  details={"message_id": message_id, "body": body[:2000].decode(errors="replace")})
        conn.commit()
