"""Fetch one page of one partition, store it, and hand on the next page.

A work item can be delivered more than once, out of a crash or a duplicate
send. The partition's progress row decides what a delivery may do: only the
delivery whose offset equals `next_offset` advances it (compare-and-set), and
the raw upsert it makes is itself safe to repeat.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared import progress as progress_store
from shared import raw_store, telemetry
from shared.nivoda import DiamondQuery, FatalNivodaError, NivodaError, RequestContext
from shared.work_item import WorkItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageOutcome:
    status: str  # fetched, finished, duplicate, skipped, failed
    stones: int = 0


def partition_query(item: WorkItem) -> DiamondQuery:
    return DiamondQuery.for_partition(
        item.price_min_cents, item.price_max_cents, item.updated_from, item.updated_to
    )


def process_work_item(runtime, item: WorkItem, *, delivery_count: int) -> PageOutcome:
    """Handle one delivery of a work item. Raise to have the queue redeliver it."""
    with runtime.pool.connection() as conn:
        current = progress_store.load_progress(conn, item.run_id, item.partition_id)
    skip_reason = _skip_reason(item, current)
    if skip_reason == "duplicate":
        _repeat_follow_up(runtime, item, current)
        return PageOutcome("duplicate")
    if skip_reason:
        log.info("work item skipped, reason=%s run_id=%s partition_id=%s offset=%s",
                 skip_reason, item.run_id, item.partition_id, item.offset)
        return PageOutcome("skipped")

    try:
        return _fetch_and_store(runtime, item, current.expected_count)
    except FatalNivodaError as exc:
        telemetry.supplier_errors.add(1, {"kind": type(exc).__name__})
        _fail_partition(runtime, item, f"supplier rejected the request: {exc}")
        return PageOutcome("failed")
    except Exception as exc:
        if isinstance(exc, NivodaError):
            telemetry.supplier_errors.add(1, {"kind": type(exc).__name__})
        if delivery_count >= runtime.settings.max_delivery_count:
            # The Python trigger cannot dead-letter; the queue does it after this
            # last delivery, so the failure is recorded here first.
            _fail_partition(runtime, item, f"gave up after {delivery_count} deliveries: {exc}")
        else:
            log.warning(
                "page failed, will be redelivered, run_id=%s partition_id=%s offset=%s"
                " delivery_count=%s error=%s",
                item.run_id, item.partition_id, item.offset, delivery_count, exc,
            )
        raise


def _skip_reason(item: WorkItem, current) -> str | None:
    if current is None:
        return "unknown partition"
    if current.run_status == "cancelled":
        return "run cancelled"
    if current.status in ("done", "failed"):
        return f"partition {current.status}"
    if item.pass_number != current.pass_number:
        return "earlier pass"
    if item.offset < current.next_offset:
        return "duplicate"
    if item.offset > current.next_offset:
        return "offset ahead of progress"
    return None


def _fetch_and_store(runtime, item: WorkItem, expected_count: int) -> PageOutcome:
    started = time.monotonic()
    # Stop at the partition's count: the supplier keeps returning rows past it.
    limit = min(item.page_size, expected_count - item.offset)
    items: list[dict] = []
    if limit > 0:
        context = RequestContext("diamonds_by_query", item.run_id, item.partition_id,
                                 item.offset)
        page = runtime.nivoda.search(
            partition_query(item), offset=item.offset, limit=limit, context=context
        )
        items = page.items[:limit]
    keyed, skipped = raw_store.split_keyed_items(items)
    next_offset = item.offset + len(items)

    with runtime.pool.connection() as conn, conn.transaction():
        for bad, reason in skipped:
            progress_store.log_error(
                conn, "worker", f"item skipped: {reason}",
                run_id=item.run_id, partition_id=item.partition_id,
                details={"offset": item.offset, "offer_id": _offer_id_of(bad)},
            )
        raw_store.upsert_raw_items(
            conn, runtime.settings.raw_table, keyed, run_id=item.run_id,
            partition_id=item.partition_id, pass_number=item.pass_number,
        )
        advanced = progress_store.advance_offset(
            conn, item.run_id, item.partition_id, pass_number=item.pass_number,
            from_offset=item.offset, to_offset=next_offset, stones=len(items),
        )
        _record_invocation(conn, item, "fetched" if advanced else "lost race",
                           len(items), started)
    if not advanced:
        return PageOutcome("duplicate")

    telemetry.pages_fetched.add(1, {"feed": item.feed})
    telemetry.stones_upserted.add(len(keyed), {"feed": item.feed})
    log.info("page stored, run_id=%s partition_id=%s offset=%s stones=%s",
             item.run_id, item.partition_id, item.offset, len(items))
    if len(items) < limit or next_offset >= expected_count:
        finish_partition(runtime, item)
        return PageOutcome("finished", len(items))
    runtime.sender.send([item.next_page(next_offset)])
    return PageOutcome("fetched", len(items))


def _offer_id_of(item) -> str | None:
    return str(item.get("id"))[:100] if isinstance(item, dict) else None


def finish_partition(runtime, item: WorkItem) -> None:
    """Re-count the partition and close it, or page it again if it drifted."""
    settings = runtime.settings
    context = RequestContext("diamonds_by_query_count", item.run_id, item.partition_id,
                             None)
    recount = runtime.nivoda.count(partition_query(item), context=context)
    with runtime.pool.connection() as conn, conn.transaction():
        current = progress_store.load_progress(conn, item.run_id, item.partition_id)
        seen = raw_store.count_seen_in_pass(
            conn, settings.raw_table, item.run_id, item.partition_id, item.pass_number
        )
        clean = recount == current.expected_count and seen == recount
        if clean or item.pass_number >= settings.max_repage_passes or recount == 0:
            drifted = not clean and recount != 0
            progress_store.mark_done(conn, item.run_id, item.partition_id,
                                     item.pass_number, drifted=drifted)
            log.log(logging.WARNING if drifted else logging.INFO,
                    "partition done, run_id=%s partition_id=%s seen=%s count=%s"
                    " drifted=%s", item.run_id, item.partition_id, seen, recount, drifted)
            return
        restarted = progress_store.start_next_pass(
            conn, item.run_id, item.partition_id, item.pass_number,
            expected_count=recount,
        )
    if restarted:
        log.warning(
            "partition drifted, paging again, run_id=%s partition_id=%s seen=%s"
            " expected=%s count=%s pass=%s", item.run_id, item.partition_id, seen,
            current.expected_count, recount, item.pass_number + 1,
        )
        runtime.sender.send([
            item.model_copy(update={"offset": 0, "pass_number": item.pass_number + 1,
                                    "expected_count": recount})
        ])


def _repeat_follow_up(runtime, item: WorkItem, current) -> None:
    """Repeat what follows a page that is already stored.

    A worker can die after committing a page and before sending the next
    message or closing the partition. Doing it again is harmless: duplicate
    detection drops a second send, and closing a partition is a compare-and-set.
    """
    stored = current.next_offset - item.offset
    if stored > item.page_size:
        return  # a later page exists, so this page's follow-up already happened
    limit = min(item.page_size, current.expected_count - item.offset)
    log.info("duplicate delivery, follow-up repeated, run_id=%s partition_id=%s offset=%s",
             item.run_id, item.partition_id, item.offset)
    if stored < limit or current.next_offset >= current.expected_count:
        finish_partition(runtime, item)
    else:
        runtime.sender.send([item.next_page(current.next_offset)])


def _fail_partition(runtime, item: WorkItem, reason: str) -> None:
    with runtime.pool.connection() as conn, conn.transaction():
        failed = progress_store.mark_failed(conn, item.run_id, item.partition_id, reason)
        progress_store.log_error(conn, "worker", reason, run_id=item.run_id,
                                 partition_id=item.partition_id,
                                 details={"offset": item.offset})
        _record_invocation(conn, item, "failed", 0, None, error=reason)
    if failed:
        log.error("partition failed, run_id=%s partition_id=%s offset=%s reason=%s",
                  item.run_id, item.partition_id, item.offset, reason)


def _record_invocation(conn, item: WorkItem, outcome: str, stones: int,
                       started: float | None, error: str | None = None) -> None:
    duration_ms = int((time.monotonic() - started) * 1000) if started else None
    conn.execute(
        "insert into worker_runs (run_id, partition_id, page_offset, message_id,"
        " outcome, stones, error, duration_ms) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (item.run_id, item.partition_id, item.offset, item.message_id, outcome, stones,
         error, duration_ms),
    )
