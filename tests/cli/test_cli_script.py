"""The installed ``runnel`` console script, run as a real process with no stdin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def runnel_script() -> str:
    """The ``runnel`` executable next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "runnel"
    if beside.exists():
        return str(beside)
    found = shutil.which("runnel")
    if found is None:
        pytest.fail("the runnel console script is not installed (pip install -e .)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNNEL_HTTP_ALLOWED_HOSTS"}
    return subprocess.run(
        [runnel_script(), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("runnel ")


def test_run_an_example_as_json() -> None:
    result = run("run", str(EXAMPLES / "branching.json"), "--json", "--input", "amount=500")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "succeeded"
    assert document["outputs"] == {
        "log_review": {"message": "order of 500 from anonymous goes to manual review"}
    }


def test_exit_codes_of_the_real_process(tmp_path: Path) -> None:
    assert run("run", str(EXAMPLES / "approval.json"), "--json").returncode == 3
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x", "nodes": [{"id": "a", "node_type": "nope"}]}')
    invalid = run("validate", str(broken))
    assert invalid.returncode == 2
    assert "node 'a' type: unknown node type 'nope'" in invalid.stderr
    failing = tmp_path / "failing.json"
    failing.write_text(
        '{"id": "x", "nodes": [{"id": "p", "node_type": "transform.json_parse",'
        ' "config": {"json": {"type": "String", "value": "{"}}}]}'
    )
    failed = run("run", str(failing))
    assert failed.returncode == 1
    assert "p failed" in failed.stdout


def test_the_live_view_survives_a_closed_pipe() -> None:
    script = runnel_script()
    shell = f"'{script}' run '{EXAMPLES / 'fan_out_merge.json'}' | head -n 1"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shell}"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert result.stdout.startswith("▶ execution ")
    assert "Traceback" not in result.stderr


def test_ctrl_c_cancels_the_execution_and_still_shows_the_result(tmp_path: Path) -> None:
    slow = tmp_path / "slow.json"
    slow.write_text(
        json.dumps(
            {
                "id": "slow",
                "nodes": [
                    {"id": "wait", "node_type": "time.delay", "config": {"delay_ms": 30_000}},
                    {"id": "log", "node_type": "debug.log", "config": {}},
                ],
                "connections": [
                    {
                        "from_node": "wait",
                        "from_port": "value",
                        "to_node": "log",
                        "to_port": "message",
                    }
                ],
            }
        )
    )
    process = subprocess.Popen(
        [runnel_script(), "run", str(slow)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "wait (time.delay) started" in line:
                break
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, errors
    output = "".join(seen) + rest
    assert "■ execution cancelled" in output
    assert "interrupted (Ctrl-C)" in output
    assert "Traceback" not in errors
