"""Node-RED for ``benchmarks/run.py``: install it into a scratch folder from the npm registry,
generate the flow of each workload, and run it headless (editor and admin API off, no
credentials file, bound to 127.0.0.1 on a free port).

The flows mirror runnel's workflows: ``http in`` -> ``change`` nodes -> ``http response``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "NODERED_DIR",
    "NodeRed",
    "chain_flow",
    "fanout_flow",
    "install",
    "installed_version",
    "node_version",
    "webhook_flow",
]

NODERED_DIR = Path(__file__).resolve().parent / ".nodered"
PACKAGE = "node-red@4"
STARTUP_SECONDS = 60.0


def _red_js() -> Path:
    return NODERED_DIR / "node_modules" / "node-red" / "red.js"


def installed_version() -> str | None:
    package = NODERED_DIR / "node_modules" / "node-red" / "package.json"
    if not package.exists():
        return None
    version: str = json.loads(package.read_text())["version"]
    return version


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def install() -> str:
    """Install Node-RED 4 into ``benchmarks/.nodered`` (once); returns its version."""
    version = installed_version()
    if version is not None:
        return version
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("Node-RED needs node and npm: apt-get install -y nodejs npm")
    NODERED_DIR.mkdir(parents=True, exist_ok=True)
    manifest = NODERED_DIR / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "runnel-bench-nodered", "private": true}\n')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", PACKAGE],
        cwd=NODERED_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    version = installed_version()
    if done.returncode != 0 or version is None:
        raise RuntimeError(f"npm install {PACKAGE} failed:\n{done.stderr[-2000:]}")
    return version


# --------------------------------------------------------------------------------------------
# Flows

_TAB = {"id": "n-tab", "type": "tab", "label": "bench", "disabled": False, "info": ""}


# Node ids must differ from every type name and setting value: Node-RED takes any property
# equal to a node id for a reference to that node (a node "join" of type "join" is circular).


def _http_in(url: str, first: str | list[str]) -> dict[str, Any]:
    wires = first if isinstance(first, list) else [first]
    return {
        "id": "n-in",
        "type": "http in",
        "z": "n-tab",
        "name": "",
        "url": url,
        "method": "post",
        "upload": False,
        "swaggerDoc": "",
        "wires": [wires],
    }


_HTTP_OUT = {
    "id": "n-out",
    "type": "http response",
    "z": "n-tab",
    "name": "",
    "statusCode": "",
    "headers": {},
    "wires": [],
}


def _change(node_id: str, rules: list[dict[str, Any]], to: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "change",
        "z": "n-tab",
        "name": "",
        "rules": rules,
        "wires": [[to]],
    }


def _set(path: str, value: str, kind: str) -> dict[str, Any]:
    return {"t": "set", "p": path, "pt": "msg", "to": value, "tot": kind}


def webhook_flow(url: str) -> list[dict[str, Any]]:
    """W1: ``POST url`` with ``{"a": 1}`` answers ``{"a": 1, "seen": true}``."""
    return [
        _TAB,
        _http_in(url, "n-set"),
        _change("n-set", [_set("payload.seen", "true", "bool")], "n-out"),
        _HTTP_OUT,
    ]


def chain_flow(url: str, length: int) -> list[dict[str, Any]]:
    """W2/L40: ``length`` change nodes; the first sets ``payload.n`` to 1, each next one adds
    1 with a JSONata expression (runnel's chain uses a ``{{ }}`` expression likewise)."""
    nodes: list[dict[str, Any]] = [_TAB, _http_in(url, "n-c0")]
    for i in range(length):
        rule = (
            _set("payload.n", "1", "num")
            if i == 0
            else _set("payload.n", "payload.n + 1", "jsonata")
        )
        nodes.append(_change(f"n-c{i}", [rule], f"n-c{i + 1}" if i + 1 < length else "n-out"))
    nodes.append(_HTTP_OUT)
    return nodes


def fanout_flow(url: str, width: int) -> list[dict[str, Any]]:
    """F100: ``http in`` wired to ``width`` change nodes (each sets ``payload.b`` and a
    ``topic``), joined by a ``join`` node (count ``width``, an object keyed by topic)."""
    branches = [f"n-b{i}" for i in range(width)]
    nodes: list[dict[str, Any]] = [_TAB, _http_in(url, branches)]
    for i, branch in enumerate(branches):
        rules = [_set("topic", f"p{i}", "str"), _set("payload.b", str(i), "num")]
        nodes.append(_change(branch, rules, "n-join"))
    nodes.append(
        {
            "id": "n-join",
            "type": "join",
            "z": "n-tab",
            "name": "",
            "mode": "custom",
            "build": "object",
            "property": "payload",
            "propertyType": "msg",
            "key": "topic",
            "joiner": "\\n",
            "joinerType": "str",
            "useparts": False,
            "accumulate": False,
            "timeout": "",
            "count": str(width),
            "reduceRight": False,
            "wires": [["n-out"]],
        }
    )
    nodes.append(_HTTP_OUT)
    return nodes


# --------------------------------------------------------------------------------------------
# A running Node-RED

_SETTINGS = """module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %(port)d,
    flowFile: "flows.json",
    flowFilePretty: false,
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: "/",
    disableEditor: true,
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: { autoInstall: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionExternalModules: false,
};
"""


class NodeRed:
    """One ``node red.js`` process (the pid is node itself, for /proc figures)."""

    def __init__(self, process: subprocess.Popen[str], port: int, user_dir: Path) -> None:
        self.process = process
        self.port = port
        self.user_dir = user_dir
        self.base_url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_started(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(self._explain("did not start in time")) from None
            if line is None:
                raise RuntimeError(self._explain("exited while starting"))
            if "Started flows" in line:
                if any("Error" in seen for seen in self.output):
                    raise RuntimeError(self._explain("started with errors"))
                return
            if time.monotonic() > deadline:
                raise RuntimeError(self._explain("did not start in time"))

    def _explain(self, what: str) -> str:
        return f"Node-RED {what}:\n" + "".join(self.output[-30:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._pump.join(5)


@contextlib.contextmanager
def running(flows: list[dict[str, Any]], port: int) -> Iterator[NodeRed]:
    """Node-RED serving ``flows`` on 127.0.0.1:``port``, userDir a fresh folder in the
    scratch folder (removed afterwards)."""
    node = shutil.which("node")
    if node is None or not _red_js().exists():
        raise RuntimeError("Node-RED is not installed (benchmarks/run.py --nodered installs it)")
    user_dir = NODERED_DIR / f"run-{port}"
    shutil.rmtree(user_dir, ignore_errors=True)
    user_dir.mkdir(parents=True)
    (user_dir / "settings.js").write_text(_SETTINGS % {"port": port})
    (user_dir / "flows.json").write_text(json.dumps(flows))
    process = subprocess.Popen(
        [
            node,
            str(_red_js()),
            "--userDir",
            str(user_dir),
            "--settings",
            str(user_dir / "settings.js"),
            "flows.json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=user_dir,
    )
    red = NodeRed(process, port, user_dir)
    try:
        red.wait_started()
        yield red
    finally:
        red.stop()
        shutil.rmtree(user_dir, ignore_errors=True)
