"""``runnel worker`` (executions only, no API) and ``runnel migrate``.

Both read the same settings as ``runnel serve`` (``RUNNEL_DATABASE_URL`` and the others).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from runnel.cli.errors import EXIT_OK, UsageProblem
from runnel.cli.serve import load_settings, masked_url
from runnel.heap import settled_heap
from runnel.settings import Settings

__all__ = ["check_startup", "migrate", "run_worker"]


def _say(text: str) -> None:
    print(text, flush=True)


def check_startup(settings: Settings) -> None:
    """Refuse to start on an out-of-date PostgreSQL schema (SQLite migrates itself) or on
    an SQLite file another process serves, with a message saying what to do."""
    from runnel.platform import check_schema
    from runnel.store.connect import normalize_url
    from runnel.store.guards import SchemaOutOfDate

    url = settings.effective_database_url
    if normalize_url(url).get_backend_name() != "postgresql":
        return
    try:
        check_schema(url)
    except SchemaOutOfDate as exc:
        raise UsageProblem(
            "the database schema is out of date",
            [str(exc), f"database: {masked_url(url)}", "run: runnel migrate"],
        ) from None


def migrate(data_dir: Path | None) -> int:
    """Apply pending migrations to the configured database and say what was done."""
    from runnel.store import migrate as migrations
    from runnel.store.connect import create_store_engine, normalize_url

    settings = load_settings(data_dir=data_dir)
    url = settings.effective_database_url
    if normalize_url(url).get_backend_name() == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(normalize_url(url), "admin")
    try:
        before = migrations.current_revisions(engine)
        migrations.migrate(engine)
        after = migrations.current_revisions(engine)
    finally:
        engine.dispose()
    where = masked_url(url)
    if before == after:
        _say(f"{where}: schema up to date at revision {', '.join(sorted(after))}")
    else:
        was = ", ".join(sorted(before)) or "empty"
        _say(f"{where}: migrated from {was} to {', '.join(sorted(after))}")
    return EXIT_OK


def run_worker(data_dir: Path | None, concurrency: int | None) -> int:
    """Run executions (no API) until SIGINT or SIGTERM; then stop claiming, let running
    nodes finish within ``RUNNEL_SHUTDOWN_TIMEOUT`` and release the rest."""
    settings = load_settings(data_dir=data_dir, worker_concurrency=concurrency)
    logging.basicConfig(
        level=settings.log.upper() if settings.log != "trace" else logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    check_startup(settings)
    try:
        asyncio.run(_work(settings))
    except Exception as exc:
        from runnel.store.errors import StoreError

        if isinstance(exc, StoreError):
            raise UsageProblem(str(exc)) from None
        raise
    return EXIT_OK


async def _work(settings: Settings) -> None:
    from runnel.platform import Platform

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    platform = await Platform.open(settings.platform_config(worker=True, serves_api=False))
    try:
        await platform.start()
        worker_id = getattr(platform.worker, "worker_id", "embedded")
        _say(f"database: {masked_url(settings.effective_database_url)}")
        _say(
            f"runnel worker {worker_id} running up to {settings.worker_concurrency}"
            " executions at once"
        )
        with settled_heap():
            await stop.wait()
        _say("stopping: finishing running nodes, then releasing the rest")
    finally:
        await platform.stop()
    _say("stopped")
