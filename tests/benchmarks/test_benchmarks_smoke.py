"""``benchmarks/run.py --smoke``: every workload runs for about a second against real
processes and the JSON report has a row with figures for each (targets are not judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LOADED = ("W1-saved", "W1-off", "W2-saved", "W2-off")
LATENCY = ("L40", "F100", "EV")


@pytest.mark.timeout(240)
def test_smoke_run_reports_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--smoke",
        "--no-nodered",
        "--out",
        str(out),
    ]
    postgres = os.environ.get("RUNNEL_TEST_POSTGRES_URL")
    command += ["--postgres-url", postgres] if postgres else ["--no-postgres"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=220, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    report = json.loads(out.read_text())
    rows = {row["id"]: row for row in report["rows"]}
    assert list(rows) == [*LOADED, *LATENCY, "PG-1", "PG-2", "PG-4"]
    assert report["errors"] == []
    assert report["machine"]["cores"] and report["versions"]["runnel"]
    for row_id in LOADED:
        figures = rows[row_id]["runnel"]
        assert rows[row_id]["status"] == "ok", rows[row_id]
        assert figures["requests"] > 0 and figures["rate"] > 0
        assert figures["non_2xx"] == 0
        assert figures["p50_ms"] > 0 and figures["p99_ms"] >= figures["p50_ms"]
        assert figures["cpu_ms_per_request"] > 0 and figures["peak_rss_mb"] > 0
        assert rows[row_id]["nodered"] is None and rows[row_id]["nodered_note"]
    # History off keeps no execution; history saved keeps them all.
    assert rows["W1-off"]["runnel"]["stored_executions"] == 0
    assert rows["W1-saved"]["runnel"]["stored_executions"] > 0
    for row_id in LATENCY:
        figures = rows[row_id]["runnel"]
        assert rows[row_id]["status"] == "ok", rows[row_id]
        assert figures["p50_ms"] > 0 and figures["p99_ms"] >= figures["p50_ms"]
        assert rows[row_id]["target_met"] in (True, False)
    assert rows["EV"]["runnel"]["events"] >= 5
    if postgres:
        assert rows["PG-2"]["status"] == "ok", rows["PG-2"]
        assert rows["PG-2"]["runnel"]["rate"] > 0
    else:
        assert rows["PG-2"]["status"] == "skipped"
    assert rows["PG-1"]["status"] == rows["PG-4"]["status"] == "skipped"
