"""Sending work items: Azure Service Bus in Azure, an in-process queue locally."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shared.work_item import WorkItem

log = logging.getLogger(__name__)


class WorkItemSender(Protocol):
    def send(self, items: list[WorkItem], *, delay_seconds: float = 0) -> None: ...


class ServiceBusSender:
    """Sends work items to a Service Bus queue, filling batches without dropping any."""

    def __init__(self, client, queue_name: str) -> None:
        self._client = client
        self._queue_name = queue_name

    @classmethod
    def from_settings(cls, settings) -> ServiceBusSender:
        from azure.servicebus import ServiceBusClient

        if settings.servicebus_connection_string:
            client = ServiceBusClient.from_connection_string(
                settings.servicebus_connection_string
            )
        else:
            from azure.identity import DefaultAzureCredential

            client = ServiceBusClient(
                settings.servicebus_namespace, DefaultAzureCredential()
            )
        return cls(client, settings.work_items_queue)

    def send(self, items: list[WorkItem], *, delay_seconds: float = 0) -> None:
        from azure.servicebus import ServiceBusMessage

        enqueue_at = None
        if delay_seconds > 0:
            enqueue_at = datetime.now(UTC) + timedelta(seconds=delay_seconds)
        messages = [
            ServiceBusMessage(
                item.to_body(),
                message_id=item.message_id,
                content_type="application/json",
                scheduled_enqueue_time_utc=enqueue_at,
                application_properties={"trace_id": item.trace_id, "run_id": item.run_id},
            )
            for item in items
        ]
        with self._client.get_queue_sender(self._queue_name) as sender:
            send_in_batches(sender, messages)


def send_in_batches(sender, messages: list) -> int:
    """Send every message, starting a new batch whenever one is full; return batches sent."""
    batches = 0
    batch = sender.create_message_batch()
    for message in messages:
        try:
            batch.add_message(message)
        except ValueError:
            # A full batch is sent and the message that did not fit opens the next
            # one; dropping it here would lose a partition.
            sender.send_messages(batch)
            batches += 1
            batch = sender.create_message_batch()
            batch.add_message(message)
    if len(batch) > 0:
        sender.send_messages(batch)
        batches += 1
    return batches
