"""``http.request`` against a real server on 127.0.0.1, and its refusals of internal targets."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest

from runnel.engine.services import HttpPolicy, NodeServices
from runnel.engine.signals import NodeFailure
from runnel.nodes.http import HttpRequest, new_client
from runnel.testing.nodes import emitted, make_context, run_node

from .local_http import LocalServer

NODE = HttpRequest()
LOOPBACK = frozenset({"127.0.0.1"})


def services(
    allowed: frozenset[str] = LOOPBACK, client: httpx.AsyncClient | None = None, **policy: Any
) -> NodeServices:
    return NodeServices(http=HttpPolicy(allowed_hosts=allowed, **policy), http_client=client)


def no_network_client() -> httpx.AsyncClient:
    """A client whose every request fails the test: proves nothing was sent."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse))


async def fails(**kwargs: Any) -> NodeFailure:
    with pytest.raises(NodeFailure) as info:
        await run_node(NODE, **kwargs)
    return info.value


# --- happy paths against the real server ------------------------------------------------------


async def test_get_text_fires_status_body_headers_and_url(local_server: LocalServer) -> None:
    url = local_server.url("/text")
    out, events = await run_node(NODE, config={"url": url}, services=services())
    assert out["status"] == 200
    assert out["body"] == "hello"
    assert out["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert out["url"] == url
    assert "json" not in out
    assert [(e.kind, e.message) for e in events.events] == [("info", f"GET {url}")]


async def test_url_comes_from_the_input_when_config_has_none(local_server: LocalServer) -> None:
    out, _ = await run_node(NODE, inputs={"url": local_server.url("/text")}, services=services())
    assert out["body"] == "hello"


async def test_config_url_wins_over_the_input(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={"url": local_server.url("/json")},
        inputs={"url": local_server.url("/text")},
        services=services(),
    )
    assert out["json"] == {"ok": True, "n": 1}


async def test_json_response_fires_json(local_server: LocalServer) -> None:
    out, _ = await run_node(NODE, config={"url": local_server.url("/json")}, services=services())
    assert out["json"] == {"ok": True, "n": 1}
    assert json.loads(out["body"]) == out["json"]


async def test_non_2xx_is_a_result_not_a_failure(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE, config={"url": local_server.url("/status/404")}, services=services()
    )
    assert (out["status"], out["body"]) == (404, "nope")
    out, _ = await run_node(NODE, config={"url": local_server.url("/problem")}, services=services())
    assert out["status"] == 422
    assert out["json"] == {"error": "bad"}  # application/problem+json counts as JSON


async def test_body_that_claims_json_but_is_not_stays_text(local_server: LocalServer) -> None:
    out, _ = await run_node(NODE, config={"url": local_server.url("/badjson")}, services=services())
    assert out["body"] == "not json"
    assert "json" not in out


async def test_charset_of_the_response_decodes_the_body(local_server: LocalServer) -> None:
    out, _ = await run_node(NODE, config={"url": local_server.url("/latin1")}, services=services())
    assert out["body"] == "café"


async def test_method_headers_query_and_json_body_are_sent(local_server: LocalServer) -> None:
    out, events = await run_node(
        NODE,
        config={
            "method": "post",
            "url": local_server.url("/echo?x=1"),
            "headers": {"X-Token": "abc", "X-Count": 3, "X-Skip": None},
            "query": {"y": 2, "tag": ["a", "b"], "flag": True, "gone": None},
            "body": {"hello": "world"},
        },
        services=services(),
    )
    echo = out["json"]
    assert echo["method"] == "POST"
    assert echo["query"] == {"x": ["1"], "y": ["2"], "tag": ["a", "b"], "flag": ["true"]}
    assert echo["headers"]["x-token"] == "abc"
    assert echo["headers"]["x-count"] == "3"
    assert "x-skip" not in echo["headers"]
    assert echo["headers"]["content-type"] == "application/json"
    assert json.loads(echo["body"]) == {"hello": "world"}
    assert events.events[0].message.startswith("POST http://127.0.0.1:")


async def test_text_body_from_the_input_is_sent_as_is(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={
            "method": "PUT",
            "url": local_server.url("/echo"),
            "headers": {"Content-Type": "text/csv"},
        },
        inputs={"body": "a,b\n1,2"},
        services=services(),
    )
    assert out["json"]["body"] == "a,b\n1,2"
    assert out["json"]["headers"]["content-type"] == "text/csv"


async def test_form_encoded_body(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={
            "method": "POST",
            "url": local_server.url("/echo"),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "body": {"a": "1 2", "b": ["x", "y"]},
        },
        services=services(),
    )
    assert out["json"]["body"] == "a=1+2&b=x&b=y"


async def test_head_request_has_no_body(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE, config={"method": "HEAD", "url": local_server.url("/text")}, services=services()
    )
    assert (out["status"], out["body"]) == (200, "")


async def test_uses_the_shared_client_and_leaves_it_open(local_server: LocalServer) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        url = local_server.url("/text")
        out, _ = await run_node(NODE, config={"url": url}, services=services(client=client))
        assert out["status"] == 200
        assert seen == [url]
        assert not client.is_closed


async def test_new_client_keeps_no_cookies(local_server: LocalServer) -> None:
    async with new_client() as client:
        out, _ = await run_node(
            NODE, config={"url": local_server.url("/setcookie")}, services=services(client=client)
        )
        assert out["headers"]["set-cookie"] == "sid=from-server; Path=/"
        assert not client.cookies


async def test_a_shared_clients_cookies_are_not_sent(local_server: LocalServer) -> None:
    async with httpx.AsyncClient(cookies={"sid": "someone-else"}) as client:
        out, _ = await run_node(
            NODE, config={"url": local_server.url("/echo")}, services=services(client=client)
        )
        assert "cookie" not in out["json"]["headers"]
        out, _ = await run_node(
            NODE,
            config={"url": local_server.url("/echo"), "headers": {"Cookie": "sid=mine"}},
            services=services(client=client),
        )
        assert out["json"]["headers"]["cookie"] == "sid=mine"


async def test_star_allows_every_host(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE, config={"url": local_server.url("/text")}, services=services(frozenset({"*"}))
    )
    assert out["status"] == 200


# --- redirects ----------------------------------------------------------------------------------


async def test_redirect_is_followed_and_reported(local_server: LocalServer) -> None:
    url = local_server.url("/redirect?to=/json")
    out, events = await run_node(NODE, config={"url": url}, services=services())
    assert out["status"] == 200
    assert out["json"] == {"ok": True, "n": 1}
    assert out["url"] == local_server.url("/json")
    assert [e.message for e in events.of_kind("info")] == [
        f"GET {url}",
        f"302 redirect to {local_server.url('/json')}",
    ]


async def test_redirect_not_followed_when_disabled(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={"url": local_server.url("/redirect?to=/json"), "follow_redirects": False},
        services=services(),
    )
    assert out["status"] == 302
    assert out["headers"]["location"] == "/json"


async def test_303_turns_post_into_get_without_body(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={
            "method": "POST",
            "url": local_server.url("/redirect?code=303&to=/echo"),
            "body": {"a": 1},
        },
        services=services(),
    )
    assert out["json"]["method"] == "GET"
    assert out["json"]["body"] is None
    assert "content-type" not in out["json"]["headers"]


async def test_307_keeps_method_and_body(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={
            "method": "POST",
            "url": local_server.url("/redirect?code=307&to=/echo"),
            "body": "payload",
        },
        services=services(),
    )
    assert (out["json"]["method"], out["json"]["body"]) == ("POST", "payload")


async def test_credentials_do_not_follow_a_redirect_to_another_host(
    local_server: LocalServer,
) -> None:
    target = local_server.url("/echo", host="localhost")
    out, _ = await run_node(
        NODE,
        config={
            "url": local_server.url(f"/redirect?to={target}"),
            "headers": {"Authorization": "Bearer secret", "X-Other": "kept"},
        },
        services=services(frozenset({"127.0.0.1", "localhost"})),
    )
    headers = out["json"]["headers"]
    assert "authorization" not in headers
    assert headers["x-other"] == "kept"


async def test_too_many_redirects(local_server: LocalServer) -> None:
    failure = await fails(
        config={"url": local_server.url("/redirect?to=/redirect%3Fto%3D/text")},
        services=services(max_redirects=1),
    )
    assert failure.kind == "http"
    assert "too many redirects (more than 1)" in failure.message


# --- refusing internal targets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://localhost:9/", "loopback"),  # a name: refused after resolution
        ("http://[::1]:9/", "loopback"),
        ("http://2130706433:9/", "loopback"),  # 127.0.0.1 as one number, resolved by DNS
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.10/", "private"),
        ("https://172.16.5.4/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:9/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "shared address space"),
    ],
)
async def test_internal_targets_are_refused_without_sending(url: str, reason: str) -> None:
    async with no_network_client() as client:
        failure = await fails(config={"url": url}, services=services(frozenset(), client))
    assert failure.kind == "forbidden_target"
    assert f"{reason} address" in failure.message
    assert "RUNNEL_HTTP_ALLOWED_HOSTS" in failure.message
    assert failure.details["reason"] == reason


async def test_the_real_server_is_refused_when_loopback_is_not_allowed(
    local_server: LocalServer,
) -> None:
    failure = await fails(
        config={"url": local_server.url("/text")}, services=services(frozenset({"example.org"}))
    )
    assert failure.kind == "forbidden_target"
    assert failure.message.startswith("refusing to connect to 127.0.0.1: loopback address")


async def test_a_name_resolving_to_loopback_is_named_with_its_address(
    local_server: LocalServer,
) -> None:
    failure = await fails(
        config={"url": local_server.url("/text", host="localhost")}, services=services()
    )
    assert failure.kind == "forbidden_target"
    assert "refusing to connect to localhost (" in failure.message


@pytest.mark.parametrize(
    ("target", "reason"),
    [("http://localhost:{port}/text", "loopback"), ("http://169.254.169.254/x", "link-local")],
)
async def test_a_redirect_from_an_allowed_host_to_an_internal_one_is_refused(
    local_server: LocalServer, target: str, reason: str
) -> None:
    to = target.format(port=local_server.port)
    failure = await fails(
        config={"url": local_server.url(f"/redirect?to={to}")}, services=services()
    )
    assert failure.kind == "forbidden_target"
    assert f"{reason} address" in failure.message


async def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "mixed.example": ["93.184.216.34", "10.1.2.3"],
        "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
    }

    async def fake_getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"reached {request.url.host}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        failure = await fails(
            config={"url": "https://mixed.example/"}, services=services(frozenset(), client)
        )
        assert failure.kind == "forbidden_target"
        assert "mixed.example (10.1.2.3): private address" in failure.message

        out, _ = await run_node(
            NODE, config={"url": "https://public.example/"}, services=services(frozenset(), client)
        )
        assert out["body"] == "reached public.example"

        failure = await fails(
            config={"url": "https://nowhere.example/"}, services=services(frozenset(), client)
        )
        assert failure.kind == "http"
        assert failure.message.startswith("cannot resolve host 'nowhere.example'")


# --- limits and errors --------------------------------------------------------------------------


async def test_response_at_the_limit_is_accepted(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={"url": local_server.url("/big?n=1000")},
        services=services(max_response_bytes=1000),
    )
    assert len(out["body"]) == 1000


@pytest.mark.parametrize("path", ["/big?n=5000", "/stream?n=5000"])
async def test_response_over_the_limit_fails(local_server: LocalServer, path: str) -> None:
    failure = await fails(
        config={"url": local_server.url(path)}, services=services(max_response_bytes=1000)
    )
    assert failure.kind == "too_large"
    assert "response body exceeds the limit of 1000 bytes" in failure.message


async def test_timeout(local_server: LocalServer) -> None:
    url = local_server.url("/slow")
    failure = await fails(config={"url": url, "timeout_ms": 30}, services=services())
    assert failure.kind == "timeout"
    assert failure.message == f"GET {url} timed out after 30 ms"


async def test_connection_refused_is_an_http_failure() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failure = await fails(config={"url": f"http://127.0.0.1:{port}/"}, services=services())
    assert failure.kind == "http"
    assert failure.message.startswith(f"GET http://127.0.0.1:{port}/ failed: ")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "http.request needs a URL (config 'url' or the 'url' input)"),
        ({"url": "ftp://example.org/f"}, "http.request needs an http(s) URL with a host"),
        ({"url": "/relative"}, "http.request needs an http(s) URL with a host"),
        ({"url": "http://example.org", "method": "FETCH"}, "config 'method' must be one of"),
        ({"url": "http://example.org", "timeout_ms": 0}, "config 'timeout_ms' must be at least 1"),
        ({"url": "http://example.org", "headers": "x"}, "config 'headers' must be an object"),
        (
            {"url": "http://example.org", "headers": {"a": "b\r\nc: d"}},
            "invalid value for header 'a'",
        ),
        ({"url": "http://example.org", "headers": {"a": "café"}}, "invalid value for header 'a'"),
        ({"url": "http://example.org", "headers": {"a b": "c"}}, "invalid header name 'a b'"),
        ({"url": "http://example.org", "query": [1]}, "config 'query' must be an object"),
    ],
)
async def test_bad_config_fails_clearly(config: dict[str, Any], message: str) -> None:
    async with no_network_client() as client:
        failure = await fails(config=config, services=services(frozenset(), client))
    assert failure.kind == "config"
    assert message in failure.message


# --- simulate mode ------------------------------------------------------------------------------


async def test_simulate_returns_the_pinned_output() -> None:
    pinned = {"status": 201, "body": "pinned"}
    async with no_network_client() as client:
        out, events = await run_node(
            NODE,
            config={"url": "http://10.0.0.1/", "pinned_output": pinned},
            simulate=True,
            services=services(frozenset(), client),
        )
    assert out == pinned
    assert events.events == []


async def test_simulate_without_pin_describes_the_request_without_sending_it() -> None:
    async with no_network_client() as client:
        ctx = make_context(
            NODE,
            config={
                "method": "POST",
                "url": "https://api.example.org/items",
                "query": {"page": 2},
                "headers": {"Authorization": "Bearer secret", "X-Trace": "t1"},
                "body": {"name": "x"},
            },
            simulate=True,
            services=services(frozenset(), client),
        )
        out = await NODE.run(ctx)
    line = "POST https://api.example.org/items?page=2"
    assert out["status"] == 0
    assert out["body"] == f"dry run: {line} (not sent)"
    assert out["json"] == {
        "dry_run": True,
        "method": "POST",
        "url": "https://api.example.org/items?page=2",
        "headers": {"Authorization": "***", "X-Trace": "t1", "content-type": "application/json"},
        "body": '{"name":"x"}',
    }
    assert [e.message for e in emitted(ctx).events] == [f"dry run: {line}"]


async def test_pinned_output_is_ignored_outside_simulate(local_server: LocalServer) -> None:
    out, _ = await run_node(
        NODE,
        config={"url": local_server.url("/text"), "pinned_output": {"status": 999}},
        services=services(),
    )
    assert out["status"] == 200


async def test_bad_pinned_output_fails() -> None:
    failure = await fails(config={"url": "http://x.org", "pinned_output": [1]}, simulate=True)
    assert failure.kind == "config"
    assert "pinned_output" in failure.message
