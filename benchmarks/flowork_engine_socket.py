"""Signed Core Engine messages per second on one connection: ``request_settings`` round
trips against the embedded engine of a real ``runnel serve`` (uvicorn, one process), with
``runnel.client.flowork.CoreEngineClient``.

Each round trip signs an envelope (client), verifies it (EIP-191 recovery, time window,
one insert into the replay seen-set, the engine's authorization list), reads the settings
and answers. The envelopes are signed before the clock starts, so the figure is the
server's (and the socket's), not the client's signing speed.

    .venv/bin/python benchmarks/flowork_engine_socket.py [--count 2000]

Run from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from e2e.harness import start_server  # noqa: E402
from runnel.client.flowork import CoreEngineClient, FloworkSigner  # noqa: E402


async def round_trips(url: str, engine_id: str, signer: FloworkSigner, count: int) -> float:
    frames = [json.dumps(signer.envelope({"type": "request_settings"})) for _ in range(count)]
    async with CoreEngineClient.connect(url, engine_id, signer) as client:
        await client.request({"type": "request_settings"}, "settings_response")  # warm up
        started = time.perf_counter()
        for frame in frames:
            await client.send_raw(frame)
            await client.next_message("settings_response")
        elapsed = time.perf_counter() - started
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    signer = FloworkSigner.generate()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        server = start_server(
            data_dir,
            env={"RUNNEL_OWNER_ADDRESS": signer.address, "RUNNEL_RATE_LIMIT_PER_SECOND": "0"},
        )
        try:
            engines = httpx.get(
                f"{server.base_url}/api/v1/user/engines", headers=signer.api_headers()
            ).json()
            engine_id = next(e["id"] for e in engines if e.get("embedded"))
            rate = asyncio.run(round_trips(server.ws_url, engine_id, signer, args.count))
        finally:
            server.stop()
    print(f"{args.count} signed request_settings round trips on one connection: {rate:,.0f}/s")


if __name__ == "__main__":
    main()
