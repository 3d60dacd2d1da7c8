"""A local stand-in for the Functions host.

It indexes the same `function_app`, feeds the worker function from a queue
with Service Bus semantics, runs orchestrations through the Durable SDK's
replay engine, and gives the HTTP API and the scheduler a Durable client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from azure.functions.servicebus import ServiceBusMessage

from cli.durable_driver import Instance, OrchestrationDriver
from shared.local_queue import LocalQueue, LockLostError, QueuedMessage

log = logging.getLogger(__name__)


def run_coroutine(coroutine):
    """Run a coroutine to completion from synchronous code, even inside an event loop.

    A caller may already run a loop in this thread (a test driving a browser
    through Playwright's synchronous API does), so the coroutine gets its own
    loop in a short-lived thread.
    """
    with ThreadPoolExecutor(1, "coroutine") as executor:
        return executor.submit(asyncio.run, coroutine).result()


def index_functions():
    """Return {name: function} from the app, as the Functions host would index it."""
    import function_app

    app = function_app.app
    app.functions_bindings = None  # get_functions() may be called once per app object
    return {fn.get_function_name(): fn for fn in app.get_functions()}


def _trigger_type(fn) -> str:
    return fn.get_bindings_dict()["bindings"][0]["type"]


class LocalDurableClient:
    """The part of DurableOrchestrationClient that the app uses."""

    def __init__(self, driver: OrchestrationDriver) -> None:
        self._driver = driver

    async def start_new(self, orchestration_function_name: str,
                        instance_id: str | None = None, client_input=None) -> str:
        instance_id = instance_id or datetime.now(UTC).strftime("local-%Y%m%d%H%M%S%f")
        self._driver.start(orchestration_function_name, instance_id, client_input)
        return instance_id

    async def get_status(self, instance_id: str):
        return self._driver.instances.get(instance_id)


class LocalHost:
    def __init__(self, runtime, *, worker_threads: int = 4, lock_seconds: float = 60.0,
                 on_message=None) -> None:
        self.runtime = runtime
        self.queue = LocalQueue(lock_seconds=lock_seconds,
                                max_delivery_count=runtime.settings.max_delivery_count)
        runtime._overrides["sender"] = self.queue
        functions = index_functions()
        self._worker = functions["worker"].get_user_function()
        orchestrators = {name: fn.get_user_function() for name, fn in functions.items()
                         if _trigger_type(fn) == "orchestrationTrigger"}
        activities = {name: fn.get_user_function() for name, fn in functions.items()
                      if _trigger_type(fn) == "activityTrigger"}
        self.functions = functions
        self.driver = OrchestrationDriver(orchestrators, activities)
        self.client = LocalDurableClient(self.driver)
        self._threads = [threading.Thread(target=self._consume, name=f"worker-{i}",
                                          daemon=True) for i in range(worker_threads)]
        self._stopping = threading.Event()
        # A hook for tests: called with each message before the worker runs; it
        # may return "crash_after" to lose the completion, as a dying worker would.
        self.on_message = on_message

    def start(self) -> LocalHost:
        from shared.runtime import set_runtime

        set_runtime(self.runtime)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.driver.close()

    def _consume(self) -> None:
        while not self._stopping.is_set():
            message = self.queue.receive(timeout=0.2)
            if message is not None:
                self.deliver(message)

    def deliver(self, message: QueuedMessage) -> None:
        """Run the worker function on one locked message and settle it."""
        action = self.on_message(message) if self.on_message else None
        trigger_message = ServiceBusMessage(
            body=message.body, message_id=message.message_id,
            delivery_count=message.delivery_count, application_properties={},
            user_properties={}, content_type="application/json",
        )
        try:
            self._worker(trigger_message)
        except Exception as exc:
            log.warning("worker raised, message abandoned, message_id=%s delivery_count=%s"
                        " error=%s", message.message_id, message.delivery_count, exc)
            self.queue.abandon(message)
            return
        if action == "crash_after":
            self.queue.abandon(message)  # as if the lock expired after a crash
            return
        try:
            self.queue.complete(message)
        except LockLostError:
            # Service Bus rejects settling an expired lock the same way; the
            # message is delivered again and the worker recognises the repeat.
            log.warning("lock lost before completion, message redelivered,"
                        " message_id=%s delivery_count=%s", message.message_id,
                        message.delivery_count)

    # Runs

    def start_run(self, run_type: str | None):
        from shared.orchestration import start_run_with_gate

        return run_coroutine(start_run_with_gate(self.runtime, self.client,
                                                 run_type=run_type))

    def run_scheduler_timer(self) -> None:
        """Invoke the timer function itself, as the host does at the scheduled time."""
        from azure.functions.timer import TimerRequest

        scheduler = self.functions["scheduler"].get_user_function()
        run_coroutine(scheduler.client_function(timer=TimerRequest(past_due=False),
                                                client=self.client))

    def wait_for(self, instance_id: str, timeout: float = 3600.0) -> Instance:
        instance = self.driver.instances[instance_id]
        if not instance.finished.wait(timeout):
            raise TimeoutError(f"orchestration {instance_id} still running after {timeout} s")
        return instance
