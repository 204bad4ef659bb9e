"""Multi-node processes for the end-to-end tests: a fresh PostgreSQL database, ``runnel
migrate``, ``runnel worker`` processes and ``runnel serve --no-worker`` API processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, pool

from e2e.harness import RUNNEL, RunningServer, _env, run_cli, start_server
from runnel.store.connect import normalize_url

__all__ = ["Cluster", "postgres_database", "start_worker"]

POSTGRES_URL = os.environ.get("RUNNEL_TEST_POSTGRES_URL")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the test server (skips without one); dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("RUNNEL_TEST_POSTGRES_URL is not set")
    server = normalize_url(POSTGRES_URL)
    name = f"runnel_e2e_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = server.set(database=name).render_as_string(hide_password=False)
        yield url.replace("postgresql+psycopg://", "postgresql://")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def start_worker(data_dir: Path, env: Mapping[str, str], *args: str) -> RunningServer:
    """Start ``runnel worker`` and return once it claims work."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.with_name(data_dir.name + ".log")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(RUNNEL), "worker", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_env(env),
            cwd=data_dir.parent,
        )
    worker = RunningServer(process, "", data_dir, log_path)
    worker._pump_thread = threading.Thread(target=worker._pump, daemon=True)
    worker._pump_thread.start()
    try:
        worker.wait_for_line("running up to")
    except BaseException:
        worker.stop(signal.SIGKILL)
        raise
    return worker


def worker_id(worker: RunningServer) -> str:
    """The id a worker printed (``runnel worker <id> running up to ...``)."""
    line = worker.wait_for_line("running up to")
    return line.split()[2]


class Cluster:
    """One PostgreSQL database, migrated, with API and worker processes started on demand;
    ``close`` stops them all."""

    def __init__(self, root: Path, url: str, **env: str) -> None:
        self.root = root
        self.url = url
        self.env = {
            "RUNNEL_DATABASE_URL": url,
            "RUNNEL_RATE_LIMIT_PER_SECOND": "0",
            "RUNNEL_LEASE_SECONDS": "2",
            "RUNNEL_HEARTBEAT_SECONDS": "0.4",
            "RUNNEL_WORKER_POLL_SECONDS": "2",
            "RUNNEL_SHUTDOWN_TIMEOUT": "5",
            **env,
        }
        self.processes: list[RunningServer] = []
        # Every process of a deployment shares the instance key (docs/deploy.md): API keys
        # are checked, and secrets decrypted, with keys derived from it.
        self.secret_key = secrets.token_hex(32)
        migrated = run_cli("migrate", "--data-dir", str(root / "migrate"), env=self.env)
        assert migrated.returncode == 0, migrated.stderr
        self.engine: Engine = create_engine(normalize_url(url), poolclass=pool.NullPool)

    def _data_dir(self, name: str) -> Path:
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        key = data_dir / "secret.key"
        key.write_text(self.secret_key)
        key.chmod(0o600)
        return data_dir

    def api(self, name: str) -> RunningServer:
        server = start_server(self._data_dir(name), env=self.env, args=["--no-worker"])
        self.processes.append(server)
        return server

    def worker(self, name: str, *args: str) -> RunningServer:
        worker = start_worker(self._data_dir(name), self.env, *args)
        self.processes.append(worker)
        return worker

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(AssertionError):
                process.stop(signal.SIGKILL if process.process.poll() is None else 0)
        self.engine.dispose()
