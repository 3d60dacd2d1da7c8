"""Handlers of the `diamond-opus` subcommands."""

from __future__ import annotations

import logging
import os
import time

from cli.main import print_json

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """A command failed in a way the user can fix; printed without a traceback."""


def _settings(**overrides):
    from shared.settings import SettingsError, load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from cli.embedded_pg import start_embedded_postgres

    return start_embedded_postgres()


def _local_runtime(**overrides):
    from shared.runtime import Runtime

    settings = _settings(database_url=_database_url(), **overrides)
    return Runtime(settings)


def migrate(args) -> int:
    from shared import db

    applied = db.migrate(_database_url())
    print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    return 0


def requeue_failed(args) -> int:
    """Queue the raw rows that failed to map; the next consolidation takes them."""
    from shared import consolidation

    runtime = _local_runtime()
    try:
        with runtime.pool.connection() as conn:
            queued = consolidation.requeue_failed(conn, runtime.settings.raw_table)
    finally:
        runtime.close()
    print(f"{queued} failed raw rows queued for the next consolidation")
    return 0


def purchases(args) -> int:
    """Release purchases left pending by a process that died (release-interrupted)."""
    from shared import purchases as purchase_store

    if args.older_than_minutes < 1:
        raise CommandError(
            f"--older-than-minutes is {args.older_than_minutes}, expected at least 1,"
            " so that purchases still in progress are kept"
        )
    runtime = _local_runtime()
    try:
        with runtime.pool.connection() as conn:
            released = purchase_store.release_interrupted(conn, args.older_than_minutes)
    finally:
        runtime.close()
    for row in released:
        print(f"released purchase {row['id']}: diamond {row['diamond_id']},"
              f" key {row['idempotency_key']}")
    print(f"{len(released)} interrupted purchases released; check the supplier's"
          " orders for their stones")
    return 0


def api_keys(args) -> int:
    runtime = _local_runtime()
    try:
        return _manage_keys(runtime, args)
    finally:
        runtime.close()


def _manage_keys(runtime, args) -> int:
    with runtime.pool.connection() as conn:
        if args.key_command == "create":
            return _create_key(conn, args)
        if args.key_command == "list":
            rows = conn.execute(
                "select id, client_name, permissions, active, created_at, last_used_at,"
                " expires_at from api_keys order by id").fetchall()
            for row in rows:
                print("\t".join("" if v is None else str(v) for v in row))
            return 0
        cur = conn.execute("update api_keys set active = false where id = %s",
                           (args.key_id,))
        if cur.rowcount == 0:
            raise CommandError(f"API key {args.key_id} not found")
        print(f"revoked API key {args.key_id}")
    return 0


def _create_key(conn, args) -> int:
    from shared.api.auth import create_api_key

    permissions = [p.strip() for p in args.permissions.split(",") if p.strip()]
    try:
        key_id, key = create_api_key(conn, args.client, permissions)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"API key {key_id} for {args.client} (shown once): {key}")
    return 0


def sync(args) -> int:
    from cli.local_host import LocalHost

    runtime = _local_runtime()
    host = LocalHost(runtime, worker_threads=args.workers).start()
    try:
        summary = run_sync(host, args.run_type)
    finally:
        host.stop()
        runtime.close()
    print_json(summary)
    return 0 if summary["status"] in ("completed", "partial") else 1


def run_sync(host, run_type: str | None) -> dict:
    """Run one sync through scheduler, workers and gate; return its summary."""
    from shared.runs import get_run, summarize_progress

    from shared.scheduler import RunAlreadyActiveError

    started_at = time.monotonic()
    try:
        started = host.start_run(run_type)
    except RunAlreadyActiveError as exc:
        raise CommandError(
            f"{exc}: if no process is working on it any more, run"
            f" `diamond-opus runs cancel {exc.run_id}`"
        ) from None
    instance = host.wait_for(started.run_id)
    runtime = host.runtime
    with runtime.pool.connection() as conn:
        run = get_run(conn, started.run_id)
        progress = summarize_progress(conn, started.run_id)
        raw = conn.execute(
            f"select count(*) from {runtime.settings.raw_table} where last_seen_run_id = %s",
            (started.run_id,)).fetchone()[0]
        consolidated = conn.execute(
            "select count(*) from diamonds where feed = %s and status = 'active'",
            (runtime.settings.feed,)).fetchone()[0]
    return {
        "run_id": started.run_id, "run_type": started.run_type, "status": run["status"],
        "expected": started.expected_count, "raw": raw, "consolidated": consolidated,
        "partitions": progress.total, "failed_partitions": progress.failed,
        "drifted_partitions": progress.drifted, "pages": progress.pages_fetched,
        "count_queries": started.count_queries,
        "dead_letters": len(host.queue.dead_letters),
        "gate": instance.output if instance.status == "Completed" else instance.error,
        "seconds": round(time.monotonic() - started_at, 2),
    }


def runs(args) -> int:
    """Retry, resume, force or cancel a run, on the local host."""
    from cli.local_host import LocalHost, run_coroutine
    from shared import run_control

    runtime = _local_runtime()
    if args.action == "cancel":
        try:
            _call_run_control(run_control.cancel, runtime, args.run_id)
        finally:
            runtime.close()
        print(f"run {args.run_id} cancelled")
        return 0
    host = LocalHost(runtime, worker_threads=args.workers).start()
    try:
        action = {"retry": run_control.retry_failed, "resume": run_control.resume,
                  "consolidate": run_control.force_consolidate}[args.action]
        result = _call_run_control(
            lambda *a: run_coroutine(action(*a)), runtime, host.client, args.run_id)
        instance_id = result[1] if isinstance(result, tuple) else result
        instance = host.wait_for(instance_id)
    finally:
        host.stop()
        runtime.close()
    print_json({"run_id": args.run_id, "action": args.action,
                "gate": instance.output if instance.status == "Completed" else instance.error})
    return 0 if instance.status == "Completed" else 1


def _call_run_control(function, *args):
    from shared.run_control import RunControlError

    try:
        return function(*args)
    except RunControlError as exc:
        raise CommandError(str(exc)) from None


def serve(args) -> int:
    from cli.local_host import LocalHost

    runtime = _local_runtime()
    host = LocalHost(runtime).start()
    base = f"http://{args.host}:{args.port}"
    print(f"Serving the API on {base}/api/v2 (docs: {base}/api/v2/docs,"
          f" dashboard: {base}/dashboard). Stop with Ctrl-C.", flush=True)
    try:
        serve_api(host, args.host, args.port)
    finally:
        host.stop()
        runtime.close()
    return 0


def serve_api(host, address: str, port: int) -> None:
    import uvicorn

    from shared.api import create_app
    from shared.orchestration import durable_client

    api = create_app(host.runtime)

    async def app_with_client(scope, receive, send):
        durable_client.set(host.client)
        await api(scope, receive, send)

    uvicorn.run(app_with_client, host=address, port=port, log_level="warning")


def demo(args) -> int:
    from cli.demo import run_demo

    return run_demo(args)
