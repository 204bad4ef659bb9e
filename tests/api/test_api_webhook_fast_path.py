"""The ASGI fast path of ``POST /webhooks/{path}`` (``runnel.api.flowengine.webhook_asgi``):
every answer it gives is the one the FastAPI route gives (the same request is sent through
both, the fast path switched off for the second), and what is not a webhook POST goes
through the whole app."""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import MAX_BODY
from api.servers import ThreadServer
from runnel.api.app import RunnelApp, create_app
from runnel.heap import GC_THRESHOLD
from runnel.platform import Platform
from runnel.settings import Settings

LIMIT = 1_000
ORIGIN = {"Origin": "https://app.example"}
#: Headers that differ between any two answers.
_VOLATILE = {"date", "x-request-id"}


def _hook(path: str, **config: Any) -> list[dict[str, Any]]:
    return [{"id": "hook", "trigger_type": {"type": "Webhook", "path": path, **config}}]


def _workflow(workflow_id: str, node_type: str, config: dict[str, Any], **fields: Any) -> Any:
    node = {"id": "n", "node_type": node_type, "config": config}
    return {"id": workflow_id, "name": workflow_id, "nodes": [node], **fields}


SEEN = {"values": {"type": "Json", "value": {"seen": True}}}
WORKFLOWS = [
    _workflow("fp-set", "transform.set", SEEN, triggers=_hook("fp/set")),
    _workflow("fp-now", "transform.set", SEEN, triggers=_hook("fp-now", respond="immediately")),
    _workflow("fp-fail", "transform.json_parse", {}, triggers=_hook("fp-fail")),
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[RunnelApp]:
    platform = await Platform.open(Settings(data_dir=tmp_path).platform_config())
    await platform.start()
    try:
        await platform.accounts.ensure_owner(tmp_path)
        settings = Settings(data_dir=tmp_path, no_auth=True, max_body_bytes=LIMIT)
        app = create_app(platform, settings)
        assert isinstance(app, RunnelApp) and app.webhook_fast_path is not None
        async with app.router.lifespan_context(app), _client(app) as client:
            for document in WORKFLOWS:
                assert (await client.post("/api/workflows", json=document)).status_code == 200
            yield app
    finally:
        await platform.stop()


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://runnel.test")


async def _both(
    app: RunnelApp, method: str, url: str, **request: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The answer of the fast path, then the answer of the route (fast path off).
    ``request["content"]`` may be a callable, called once for each (a generator)."""
    answers = []
    fast_path = app.webhook_fast_path
    for enabled in (True, False):
        app.webhook_fast_path = fast_path if enabled else None
        arguments = dict(request)
        if callable(arguments.get("content")):
            arguments["content"] = arguments["content"]()
        try:
            async with _client(app) as client:
                answers.append(await client.request(method, url, **arguments))
        finally:
            app.webhook_fast_path = fast_path
    return answers[0], answers[1]


def _same(fast: httpx.Response, routed: httpx.Response, *, body: bool = True) -> None:
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert {k: v for k, v in fast.headers.items() if k not in _VOLATILE} == {
        k: v for k, v in routed.headers.items() if k not in _VOLATILE
    }
    if body:
        assert _without_ids(fast) == _without_ids(routed)


def _without_ids(response: httpx.Response) -> Any:
    """The answer's body, without the execution id each run has its own of."""
    if not response.content:
        return None
    document = response.json()
    if isinstance(document, dict) and "execution_id" in document:
        document = {**document, "execution_id": "..."}
        document["error"] = document.get("error", "").split(" ")[:3]
    return document


def _chunks(total: int) -> Callable[[], AsyncIterator[bytes]]:
    """A JSON object of about ``total`` bytes, sent in pieces without a Content-Length."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": "'
        for _ in range(total // 100):
            yield b"y" * 100
        yield b'"}'

    return chunks


@pytest.mark.parametrize(
    ("url", "sent", "status"),
    [
        ("/webhooks/fp/set", {"json": {"a": 1}}, 200),
        ("/webhooks/fp/set/", {"json": {"a": {"type": "Number", "value": 7}}}, 200),
        ("/webhooks/fp/set", {}, 200),  # no body: no inputs
        ("/webhooks/fp/set", {"content": _chunks(500)}, 200),  # chunked, within the limit
        ("/webhooks/fp/set", {"content": b'{"a": 1', "headers": ORIGIN}, 400),  # bad JSON
        ("/webhooks/fp/set", {"content": b"[1]"}, 400),  # not an object
        ("/webhooks/fp/set", {"json": {"a": {"type": "Number", "value": "x"}}}, 400),
        ("/webhooks/fp/set", {"content": b"x" * (LIMIT + 1)}, 413),  # Content-Length
        ("/webhooks/fp/set", {"content": _chunks(LIMIT * 3)}, 413),  # chunked, no length
        ("/webhooks/nowhere", {"json": {}, "headers": ORIGIN}, 404),
        ("/webhooks/", {"json": {}}, 404),
        ("/webhooks/fp-fail", {"json": {"json": "{nope"}}, 500),
    ],
)
async def test_the_fast_path_answers_as_the_route(
    app: RunnelApp, url: str, sent: dict[str, Any], status: int
) -> None:
    fast, routed = await _both(app, "POST", url, **sent)
    assert fast.status_code == status, fast.text
    _same(fast, routed)
    assert fast.headers["content-type"] == "application/json"
    if status >= 400:
        assert isinstance(fast.json()["error"], str)
    if status == 413:
        assert fast.json() == {"error": f"Request body too large: the limit is {LIMIT} bytes"}
    if "headers" in sent:
        assert fast.headers["access-control-allow-origin"] == "*"
        assert "X-Request-ID" in fast.headers["access-control-expose-headers"]


async def test_answers_of_a_run(app: RunnelApp) -> None:
    fast, routed = await _both(app, "POST", "/webhooks/fp/set", json={"a": 1}, headers=ORIGIN)
    _same(fast, routed)
    assert fast.json() == {"a": 1, "seen": True}
    later, routed_later = await _both(app, "POST", "/webhooks/fp-now", json={})
    _same(later, routed_later, body=False)  # each has its own execution id
    assert later.status_code == 202 and set(later.json()) == {"execution_id", "status"}


async def test_only_webhook_posts_take_the_fast_path(
    app: RunnelApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_path = app.webhook_fast_path
    assert fast_path is not None
    taken: list[str] = []
    inner = fast_path.app

    async def noting(scope: Any, receive: Any, send: Any) -> None:
        taken.append(f"{scope['method']} {scope['path']}")
        await inner(scope, receive, send)

    monkeypatch.setattr(fast_path, "app", noting)
    async with _client(app) as client:
        assert (await client.post("/webhooks/fp/set", json={})).status_code == 200
        assert (await client.post("/webhooks/nowhere", json={})).status_code == 404
        assert (await client.get("/webhooks/fp/set")).status_code == 405
        assert (await client.post("/webhooksx", json={})).status_code == 404
        assert (await client.get("/health")).status_code == 200
    assert taken == ["POST /webhooks/fp/set", "POST /webhooks/nowhere"]


async def test_request_ids(app: RunnelApp) -> None:
    mine, routed = await _both(app, "POST", "/webhooks/fp/set", headers={"X-Request-ID": "r-1"})
    assert mine.headers["x-request-id"] == routed.headers["x-request-id"] == "r-1"
    new, _ = await _both(app, "POST", "/webhooks/fp/set", headers={"X-Request-ID": "a b"})
    assert len(new.headers["x-request-id"]) == 32


@pytest.mark.parametrize(("method", "status"), [("GET", 405), ("HEAD", 405), ("PUT", 405)])
async def test_other_methods_go_through_the_app(app: RunnelApp, method: str, status: int) -> None:
    fast, routed = await _both(app, method, "/webhooks/fp/set")
    assert fast.status_code == status
    _same(fast, routed)


async def test_metrics_count_both_paths_under_the_route_template(app: RunnelApp) -> None:
    await _both(app, "POST", "/webhooks/fp/set", json={})
    await _both(app, "POST", "/webhooks/nowhere", json={})
    async with _client(app) as client:
        text = (await client.get("/metrics")).text
    route = 'method="POST",route="/webhooks/{path:path}"'
    assert f'runnel_http_request_duration_seconds_count{{{route},status="200"}} 2.0' in text
    assert f'runnel_http_request_duration_seconds_count{{{route},status="404"}} 2.0' in text


async def test_rate_limit_by_address(tmp_path: Path) -> None:
    platform = await Platform.open(Settings(data_dir=tmp_path).platform_config())
    await platform.start()
    try:
        await platform.accounts.ensure_owner(tmp_path)
        settings = Settings(
            data_dir=tmp_path, no_auth=True, rate_limit_per_second=0.5, rate_limit_burst=2
        )
        app = create_app(platform, settings)
        assert isinstance(app, RunnelApp)
        async with app.router.lifespan_context(app):
            fast, routed = await _both(app, "POST", "/webhooks/nowhere")
            assert fast.status_code == routed.status_code == 404
            # The fast path and the route draw from the same bucket.
            fast, routed = await _both(app, "POST", "/webhooks/nowhere")
            assert fast.status_code == routed.status_code == 429
            _same(fast, routed)
            assert fast.headers["retry-after"] == "2"
            assert fast.json() == {"error": "Too many requests: retry after 2 s"}
    finally:
        await platform.stop()


# -- over TCP, with uvicorn ------------------------------------------------------------


def _raw(server: ThreadServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_chunked_bodies_over_tcp(api_server: ThreadServer, client: httpx.Client) -> None:
    document = _workflow("fp-tcp", "transform.set", SEEN, triggers=_hook("fp-tcp"))
    assert client.post("/api/workflows", json=document).status_code == 200
    head = b"POST /webhooks/fp-tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
    answer = _raw(api_server, chunked + b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n')
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"a":1,"seen":true}')

    piece = b"y" * 8192
    big = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(MAX_BODY // 8192 + 2))
    answer = _raw(api_server, chunked + b'7\r\n{"x": "\r\n' + big + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"error":"Request body too large: the limit is %d bytes"}' % MAX_BODY)

    answer = _raw(api_server, head + b"Content-Length: 3\r\n\r\n{a}")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"not valid JSON" in answer
    answer = _raw(api_server, head.replace(b"POST", b"HEAD") + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 405 ")


def test_the_served_app_keeps_its_startup_heap_out_of_the_collectors_way(
    api_server: ThreadServer,
) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] >= GC_THRESHOLD
