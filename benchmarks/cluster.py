"""Multi-node throughput and takeover time on PostgreSQL, with real processes.

For 1, 2 and 4 ``runnel worker`` processes behind one ``runnel serve --no-worker``: queue
N executions of a 5-node workflow (five ``time.delay`` of 0 ms) before the workers start,
then count executions/s from the first execution's start to the last one's finish.
Then the takeover: with two workers busy on slow executions, SIGKILL one and measure the
time until an execution it held is taken over elsewhere.

    RUNNEL_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/cluster.py [--executions 1000]

Each measurement uses a fresh database (dropped afterwards). Run from the repository root.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from e2e.cluster import Cluster, postgres_database, worker_id  # noqa: E402
from e2e.workflows import document, node  # noqa: E402


def _wait(cluster: Cluster, sql: str, params: dict[str, object], until: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with cluster.engine.connect() as db:
            if db.exec_driver_sql(sql, params).scalar_one() >= until:
                return
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for: {sql}")


def throughput(workers: int, executions: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as url:
        cluster = Cluster(Path(tmp), url, RUNNEL_LOG="warning")
        try:
            api = cluster.api("api")
            delays = [node(f"d{i}", "time.delay", delay_ms=0) for i in range(1, 6)]
            with api.client() as client:
                client.post("/api/workflows", json=document("bench", delays)).raise_for_status()
                # Queue everything first, so that posting does not limit the rate measured.
                for _ in range(executions):
                    client.post("/api/workflows/bench/execute?wait=false", json={})
            for index in range(workers):
                cluster.worker(f"w{index}", "--concurrency", str(concurrency))
            _wait(
                cluster,
                "SELECT COUNT(*) FROM executions WHERE status = 'succeeded'",
                {},
                executions,
                600,
            )
            with cluster.engine.connect() as db:
                first, last = db.exec_driver_sql(
                    "SELECT MIN(started_at), MAX(finished_at) FROM executions"
                ).one()
            return executions / (last - first)
        finally:
            cluster.close()


def takeover_seconds() -> float:
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as url:
        # The default lease (30 s) and heartbeat (10 s) of a deployment.
        cluster = Cluster(Path(tmp), url, RUNNEL_LEASE_SECONDS="30", RUNNEL_HEARTBEAT_SECONDS="10")
        try:
            api = cluster.api("api")
            victim = cluster.worker("w1", "--concurrency", "4")
            cluster.worker("w2", "--concurrency", "4")
            victim_id = worker_id(victim)
            slow = [node("d1", "time.delay", delay_ms=20_000)]
            with api.client() as client:
                client.post("/api/workflows", json=document("slow", slow)).raise_for_status()
                for _ in range(4):
                    client.post("/api/workflows/slow/execute?wait=false", json={})
            held = "SELECT COUNT(*) FROM executions WHERE lease_owner = %(w)s"
            _wait(cluster, held, {"w": victim_id}, 1, 60)
            killed = time.monotonic()
            victim.stop(signal.SIGKILL)
            _wait(cluster, "SELECT COUNT(*) FROM executions WHERE takeovers > 0", {}, 1, 120)
            return time.monotonic() - killed
        finally:
            cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    for workers in args.workers:
        rate = throughput(workers, args.executions, args.concurrency)
        print(f"{workers} worker(s): {rate:7.1f} executions/s (5 nodes each)", flush=True)
    print(f"takeover after SIGKILL (lease 30 s, heartbeat 10 s): {takeover_seconds():.1f} s")


if __name__ == "__main__":
    main()
