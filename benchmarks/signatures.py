"""Flowork signature verifications per second, at three depths:

1. ``runnel.auth.signatures.verify``: shape, time window and EIP-191 recovery with
   eth-account (coincurve backend), on one core;
2. ``IdentityService.sign_in`` on a SQLite store: the above plus the replay check (one
   insert into the seen-set) and the user lookup, as a gateway request does it;
3. ``GET /api/v1/auth/profile`` end to end against a real ``runnel serve`` (uvicorn,
   one process), with concurrent clients; the server's CPU time per request tells what
   one core could answer (the Python client competes for the same cores).

    .venv/bin/python benchmarks/signatures.py [--count 3000]

Run from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from e2e.harness import start_server  # noqa: E402
from flowork_keys import Wallet  # noqa: E402
from runnel.auth.signatures import MessageFormat, SignedMessage, verify  # noqa: E402
from runnel.engine.registry import default_registry  # noqa: E402
from runnel.engine.services import NodeServices  # noqa: E402
from runnel.services.flowork import FloworkServices  # noqa: E402
from runnel.store import SqlStore  # noqa: E402


def signed_messages(count: int) -> list[SignedMessage]:
    wallets = [Wallet() for _ in range(20)]
    messages = []
    for n in range(count):
        wallet = wallets[n % len(wallets)]
        text = wallet.message()
        messages.append(SignedMessage(wallet.address, text, wallet.sign(text)))
    return messages


def bench_verify(messages: list[SignedMessage]) -> float:
    now = time.time()
    started = time.perf_counter()
    for message in messages:
        verify(message, MessageFormat.API, now)
    return len(messages) / (time.perf_counter() - started)


async def bench_sign_in(messages: list[SignedMessage], directory: Path) -> float:
    store = SqlStore.open(f"sqlite:///{directory / 'bench.db'}")
    try:
        flowork = FloworkServices(store, default_registry(), NodeServices(), b"k" * 32)
        # Register the 20 users first: the measurement is of signing in.
        for message in messages[:20]:
            await flowork.identities.user_for_address(message.address, create=True)
        started = time.perf_counter()
        for message in messages:
            await flowork.identities.sign_in(message)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_http(base_url: str, count: int, concurrency: int) -> float:
    wallets = [Wallet() for _ in range(concurrency)]
    headers = [[w.headers() for _ in range(count // concurrency)] for w in wallets]
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for wallet in wallets:  # register them first
            (await client.get("/api/v1/auth/profile", headers=wallet.headers())).raise_for_status()

        async def run(batch: list[dict[str, str]]) -> None:
            for h in batch:
                (await client.get("/api/v1/auth/profile", headers=h)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(run(batch) for batch in headers))
        return sum(map(len, headers)) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    messages = signed_messages(args.count)
    print(f"verify (eth-account, one core):   {bench_verify(messages):8.0f} /s")
    with tempfile.TemporaryDirectory() as directory:
        rate = asyncio.run(bench_sign_in(signed_messages(args.count), Path(directory)))
        print(f"sign_in (+ replay check, SQLite): {rate:8.0f} /s")
        server = start_server(
            Path(directory) / "data",
            env={"RUNNEL_RATE_LIMIT_PER_SECOND": "0", "RUNNEL_LOG": "warning"},
        )
        try:
            before = cpu_seconds(server.process.pid)
            rate = asyncio.run(bench_http(server.base_url, args.count, args.concurrency))
            used = cpu_seconds(server.process.pid) - before
            print(f"GET /api/v1/auth/profile (HTTP, {args.concurrency} clients): {rate:8.0f} /s")
            # The Python client shares the two cores; the server's own CPU per request
            # says what one server core could answer.
            print(
                f"  server CPU per request: {used * 1000 / args.count:.2f} ms"
                f" (= {args.count / used:.0f} /s per core)"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
