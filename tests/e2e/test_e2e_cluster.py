"""Multi-node on PostgreSQL with real processes: two ``runnel worker`` and one
``runnel serve --no-worker``. Skipped without ``RUNNEL_TEST_POSTGRES_URL``."""

from __future__ import annotations

import collections
import contextlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from e2e.cluster import Cluster, postgres_database, worker_id
from e2e.events import read_until
from e2e.workflows import document, node

pytestmark = pytest.mark.postgres

EXECUTIONS = 200


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with postgres_database() as url:
        running = Cluster(tmp_path, url)
        try:
            yield running
        finally:
            running.close()


def test_sigkill_of_a_worker_loses_and_repeats_nothing(cluster: Cluster) -> None:
    api = cluster.api("api")
    first = cluster.worker("w1", "--concurrency", "8")
    cluster.worker("w2", "--concurrency", "8")
    victim = worker_id(first)
    delays = [node(f"d{i}", "time.delay", delay_ms=60) for i in range(1, 6)]
    url = f"{api.ws_url}/api/events?workflow_id=crash"
    with (
        api.client() as client,
        connect(url, additional_headers=api.auth, max_queue=None) as ws,
    ):
        assert client.post("/api/workflows", json=document("crash", delays)).status_code == 200
        started = [
            client.post("/api/workflows/crash/execute?wait=false", json={}).json()["execution_id"]
            for _ in range(EXECUTIONS)
        ]
        completed: collections.Counter[str] = collections.Counter()

        def count(message: dict[str, object]) -> bool:
            if message["type"] == "WorkflowCompleted":
                assert message["status"] == "succeeded", message
                completed[str(message["execution_id"])] += 1
            return sum(completed.values()) >= target

        # Every event here was produced by a worker process and reached this API process.
        target = EXECUTIONS // 4
        read_until(ws, count)
        with cluster.engine.connect() as db:
            held = db.exec_driver_sql(
                "SELECT COUNT(*) FROM executions WHERE lease_owner = %(w)s AND status = 'running'",
                {"w": victim},
            ).scalar_one()
        assert held > 0, "the victim should be running executions when it is killed"
        killed_at = time.monotonic()
        first.stop(signal.SIGKILL)
        # What the dead worker left running (it may have finished some since ``held``).
        with cluster.engine.connect() as db:
            stranded = db.exec_driver_sql(
                "SELECT COUNT(*) FROM executions WHERE lease_owner = %(w)s AND status = 'running'",
                {"w": victim},
            ).scalar_one()
        assert stranded > 0, "the victim should leave executions behind"
        # A worker publishes an execution's events after its checkpoint commits, so the
        # victim may have stored a finish it never got to announce: the store is the
        # judge of "finished", the socket of "announced at most once".
        while _finished(cluster) < EXECUTIONS:
            assert time.monotonic() - killed_at < 60, "executions left unfinished"
            with contextlib.suppress(TimeoutError):
                count(json.loads(ws.recv(timeout=1)))
        finished_after = time.monotonic() - killed_at
        with contextlib.suppress(TimeoutError):
            while True:  # what is still on its way
                count(json.loads(ws.recv(timeout=1)))
    assert set(completed) <= set(started)
    # Only the victim's last finishes can go unannounced.
    assert len(set(started) - set(completed)) <= held
    assert all(n == 1 for n in completed.values()), "an execution finished twice"
    assert finished_after < 60
    with cluster.engine.connect() as db:
        statuses = dict(
            db.exec_driver_sql("SELECT status, COUNT(*) FROM executions GROUP BY status").all()
        )
        takeovers = db.exec_driver_sql("SELECT SUM(takeovers) FROM executions").scalar_one()
        finishes = db.exec_driver_sql(
            "SELECT execution_id, COUNT(*) FROM execution_events"
            " WHERE type = 'execution.finished' GROUP BY execution_id"
        ).all()
        # (execution, node) -> the seqs of its start and finish events, with the attempt.
        node_events = db.exec_driver_sql(
            "SELECT execution_id, node_id, type, seq, data FROM execution_events"
            " WHERE type IN ('node.started', 'node.finished') ORDER BY execution_id, seq"
        ).all()
        attempts = db.exec_driver_sql(
            "SELECT attempt, COUNT(*) FROM node_runs WHERE status = 'succeeded' GROUP BY attempt"
        ).all()
    assert statuses == {"succeeded": EXECUTIONS}
    assert len(finishes) == EXECUTIONS and all(n == 1 for _, n in finishes)
    assert takeovers >= stranded
    finished_nodes: collections.Counter[tuple[str, str]] = collections.Counter()
    for execution_id, node_id, kind, _seq, _data in node_events:
        key = (execution_id, node_id)
        if kind == "node.finished":
            finished_nodes[key] += 1
        else:
            # A node that had finished never starts again.
            assert finished_nodes[key] == 0, _history(cluster, execution_id)
    assert len(finished_nodes) == EXECUTIONS * 5
    assert all(n == 1 for n in finished_nodes.values())
    # The nodes the victim was running ran again, with the next attempt number.
    assert dict(attempts).get(2, 0) >= 1, attempts


def _finished(cluster: Cluster) -> int:
    with cluster.engine.connect() as db:
        finished: int = db.exec_driver_sql(
            "SELECT COUNT(*) FROM executions WHERE status IN ('succeeded', 'failed', 'cancelled')"
        ).scalar_one()
    return finished


def test_events_and_cancel_reach_across_processes(cluster: Cluster) -> None:
    api = cluster.api("api")
    other_api = cluster.api("api2")  # the owner (and its token) came with the first
    cluster.worker("w1")
    slow = document("slow", [node("wait", "time.delay", delay_ms=20_000)])
    with (
        api.client() as client,
        other_api.client(api.token) as other_client,
        connect(f"{api.ws_url}/api/events?workflow_id=slow", additional_headers=api.auth) as ws,
        connect(
            f"{other_api.ws_url}/api/events?workflow_id=slow", additional_headers=api.auth
        ) as other_ws,
    ):
        assert client.post("/api/workflows", json=slow).status_code == 200
        accepted = client.post("/api/workflows/slow/execute?wait=false", json={})
        execution_id = accepted.json()["execution_id"]
        read_until(ws, lambda m: m["type"] == "NodeStarted", execution_id)
        read_until(other_ws, lambda m: m["type"] == "NodeStarted", execution_id)
        # The cancel goes to the other API process, which runs nothing: it must reach the
        # worker, which ends the execution at once (the delay had 20 s to go).
        asked = time.monotonic()
        cancelled = other_client.post(f"/api/executions/{execution_id}/cancel")
        took = time.monotonic() - asked
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert took < 2.0
        end = read_until(ws, lambda m: m["type"] == "WorkflowCompleted", execution_id)[-1]
        assert end["status"] == "cancelled"
    with cluster.engine.connect() as db:
        node_status = db.exec_driver_sql(
            "SELECT status FROM node_runs WHERE execution_id = %(id)s", {"id": execution_id}
        ).scalar_one()
    assert node_status == "cancelled"


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    from e2e.harness import run_cli

    with postgres_database() as url:
        env = {"RUNNEL_DATABASE_URL": url}
        for command in (["serve", "--no-worker"], ["worker"]):
            result = run_cli(*command, "--data-dir", str(tmp_path / "d"), env=env)
            assert result.returncode == 2
            assert "runnel migrate" in result.stderr


def _history(cluster: Cluster, execution_id: str) -> str:
    """An execution's events, for a failure message."""
    with cluster.engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT seq, type, node_id, timestamp, data FROM execution_events"
            " WHERE execution_id = %(id)s ORDER BY seq",
            {"id": execution_id},
        ).all()
    return "\n".join(f"{r.seq} {r.timestamp:.3f} {r.type} {r.node_id} {r.data[:120]}" for r in rows)
