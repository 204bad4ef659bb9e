"""``http.request``: one HTTP request, with redirects followed and checked hop by hop.

Ports: in ``url``, ``body`` (config ``url`` / ``body`` win when set); out ``status`` (int),
``body`` (text), ``headers`` (lower-case name -> value, repeated headers joined by ``", "``),
``url`` (the final URL after redirects) and ``json`` (the parsed body, only when the response
says it is JSON and it parses). A non-2xx status is a normal result, not a failure.

Failures (``NodeFailure.kind``): ``config`` (bad URL, method, headers), ``forbidden_target``
(a private, loopback, link-local... address, see ``_netguard``), ``timeout`` (``timeout_ms``
bounds the whole request: DNS, redirects and reading the body), ``too_large`` (the body
exceeds ``HttpPolicy.max_response_bytes``), ``http`` (DNS, connection or protocol errors, too
many redirects).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import http.cookiejar
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from runnel.engine.node import (
    ConfigField,
    FieldType,
    NodeContext,
    NodeManifest,
    NodeOutput,
    NodeType,
    PortSpec,
)
from runnel.engine.services import HttpPolicy
from runnel.engine.signals import NodeFailure
from runnel.model.values import to_json
from runnel.nodes._netguard import check_target
from runnel.nodes._support import (
    PINNED_OUTPUT,
    as_int,
    as_mapping,
    as_text,
    dump_json,
    option,
    param,
    parse_json,
    pinned_output,
    truthy,
)

__all__ = ["METHODS", "NODE_TYPES", "HttpRequest", "PreparedRequest", "new_client", "prepare"]

METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_METHOD = ConfigField(
    "method", FieldType.STRING, default="GET", enum=METHODS, description="HTTP method."
)
_URL = ConfigField("url", FieldType.STRING, description="Target URL (else the `url` input).")
_HEADERS = ConfigField("headers", FieldType.OBJECT, description="Request headers.")
_QUERY = ConfigField(
    "query", FieldType.OBJECT, description="Query parameters, added to the URL's own."
)
_BODY = ConfigField(
    "body",
    FieldType.ANY,
    description="Request body (else the `body` input): text as is, bytes raw, other values "
    "as JSON (or form-encoded when Content-Type says application/x-www-form-urlencoded).",
)
_TIMEOUT = ConfigField(
    "timeout_ms",
    FieldType.INTEGER,
    minimum=1,
    description="Bound on the whole request, redirects included (default: the operator's).",
)
_FOLLOW = ConfigField(
    "follow_redirects",
    FieldType.BOOLEAN,
    default=True,
    description="Follow redirects (each hop is checked like the first request).",
)

#: Statuses after which a redirect turns the request into a GET without a body, as browsers
#: and httpx do (303 always; 301 and 302 only for POST, for historical reasons).
_TO_GET_ALWAYS: Final = frozenset({303})
_TO_GET_FOR_POST: Final = frozenset({301, 302})
_BODY_HEADERS: Final = frozenset({"content-type", "content-length", "transfer-encoding"})
#: Credentials that must not follow a redirect to another origin.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
#: RFC 9110 field names (tokens) and values (visible ASCII, spaces and tabs). Checked here so
#: that a bad header is a config failure that names it, not a protocol error mid-request.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE: Final = re.compile(r"[\t\x20-\x7e]*")
#: Header names whose values a dry run does not show (its output is stored in history).
_SENSITIVE_MARKERS: Final = ("authorization", "cookie", "token", "secret", "api-key", "apikey")


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request checked for shape (not yet for its target), ready to send."""

    method: str
    url: httpx.URL
    headers: tuple[tuple[str, str], ...]
    content: bytes | None
    timeout_s: float
    follow_redirects: bool

    @property
    def line(self) -> str:
        """``GET https://...``: how events and messages name the request."""
        return f"{self.method} {self.url}"


def prepare(ctx: NodeContext, policy: HttpPolicy) -> PreparedRequest:
    """Read and check the node's config and inputs; raises ``NodeFailure`` (kind config)."""
    method = str(option(ctx, _METHOD)).strip().upper()
    if method not in METHODS:
        raise NodeFailure(
            f"config 'method' must be one of {', '.join(METHODS)}, got {method!r}", "config"
        )
    url = _parse_url(param(ctx, "url"))
    query = ctx.config.get("query")
    if query is not None:
        url = url.copy_merge_params(tuple(_query_params(as_mapping(query, "query"))))
    headers = _headers(ctx.config.get("headers"))
    content, content_type = _encode_body(param(ctx, "body"), headers)
    if content_type is not None:
        headers.append(("content-type", content_type))
    raw_timeout = ctx.config.get(_TIMEOUT.name)
    timeout_ms = (
        policy.default_timeout_ms
        if raw_timeout is None
        else as_int(raw_timeout, _TIMEOUT.name, minimum=1)
    )
    return PreparedRequest(
        method=method,
        url=url,
        headers=tuple(headers),
        content=content,
        timeout_s=timeout_ms / 1000.0,
        follow_redirects=truthy(option(ctx, _FOLLOW)),
    )


class HttpRequest:
    """Send one HTTP request; see the module docstring for ports and failures."""

    manifest = NodeManifest(
        type="http.request",
        category="http",
        description="Make HTTP requests",
        aliases=("curl",),
        config=(_METHOD, _URL, _HEADERS, _QUERY, _BODY, _TIMEOUT, _FOLLOW, PINNED_OUTPUT),
        inputs=(PortSpec("url", "Target URL"), PortSpec("body", "Request body")),
        outputs=(
            PortSpec("status", "HTTP status code (0 in a dry run)"),
            PortSpec("body", "Response body as text"),
            PortSpec("headers", "Response headers, lower-case names"),
            PortSpec("url", "Final URL after redirects"),
            PortSpec("json", "Parsed body, when the response is JSON"),
        ),
        side_effects=True,
        kind="ACTION",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Send the request (or describe it in simulate mode) and return the response."""
        pinned = pinned_output(ctx)
        if pinned is not None:
            return pinned
        policy = ctx.services.http
        request = prepare(ctx, policy)
        if ctx.simulate:
            ctx.emit("info", f"dry run: {request.line}")
            return _dry_run(request)
        ctx.emit("info", request.line)
        try:
            async with asyncio.timeout(request.timeout_s):
                client = ctx.services.http_client
                if client is not None:
                    return await _send(ctx, client, request, policy)
                async with new_client() as own_client:
                    return await _send(ctx, own_client, request, policy)
        except (TimeoutError, httpx.TimeoutException) as exc:
            ms = round(request.timeout_s * 1000)
            raise NodeFailure(
                f"{request.line} timed out after {ms} ms", kind="timeout", url=str(request.url)
            ) from exc
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            raise NodeFailure(
                f"{request.line} failed: {detail}", kind="http", url=str(request.url)
            ) from exc


async def _send(
    ctx: NodeContext, client: httpx.AsyncClient, request: PreparedRequest, policy: HttpPolicy
) -> NodeOutput:
    method, url, content = request.method, request.url, request.content
    headers = list(request.headers)
    sends_cookie = any(name.lower() == "cookie" for name, _value in headers)
    timeout = httpx.Timeout(request.timeout_s)
    # Redirects are followed here rather than by httpx so that every hop's target passes the
    # address check before anything is sent to it.
    for _hop in range(policy.max_redirects + 1):
        # The ASCII (IDNA) form is the name the connection will resolve.
        await check_target(url.raw_host.decode("ascii"), _port(url), policy.allowed_hosts)
        outgoing = client.build_request(
            method, url, headers=headers, content=content, timeout=timeout
        )
        if not sends_cookie:
            # A shared client not built by new_client may hold other workflows' cookies.
            outgoing.headers.pop("cookie", None)
        response = await client.send(outgoing, stream=True, follow_redirects=False)
        try:
            if not (request.follow_redirects and response.is_redirect):
                body = await _read_capped(response, policy.max_response_bytes, request)
                return _outputs(response, body, url)
            next_url = _redirect_url(url, response.headers["location"])
            ctx.emit("info", f"{response.status_code} redirect to {next_url}")
        finally:
            await response.aclose()
        if _becomes_get(response.status_code, method):
            method, content = "GET", None
            headers = [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]
        if _origin(next_url) != _origin(url):
            headers = [(k, v) for k, v in headers if k.lower() not in _CREDENTIAL_HEADERS]
        url = next_url
    raise NodeFailure(
        f"{request.line}: too many redirects (more than {policy.max_redirects})",
        kind="http",
        url=str(request.url),
    )


def new_client(**options: Any) -> httpx.AsyncClient:
    """An httpx client fit for ``http.request``; hosts should build the shared
    ``NodeServices.http_client`` with it.

    Its cookie jar refuses every cookie: a client shared by the executions of many users must
    not carry one workflow's session cookies into another's requests. It reuses one TLS
    context. ``options`` go to ``httpx.AsyncClient`` (limits, proxy...).
    """
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    options.setdefault("verify", _tls_context())
    return httpx.AsyncClient(cookies=jar, follow_redirects=False, **options)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every short-lived client: building one loads the CA bundle and
    costs about 50 ms, far more than the request itself on a local network."""
    return httpx.create_ssl_context()


def _becomes_get(status: int, method: str) -> bool:
    if status in _TO_GET_ALWAYS:
        return method != "HEAD"
    return status in _TO_GET_FOR_POST and method == "POST"


async def _read_capped(response: httpx.Response, limit: int, request: PreparedRequest) -> bytes:
    """The decoded body, refused as soon as it grows beyond ``limit`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > limit:
        raise _too_large(request, limit)
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            raise _too_large(request, limit)
    return bytes(buffer)


def _too_large(request: PreparedRequest, limit: int) -> NodeFailure:
    return NodeFailure(
        f"{request.line}: response body exceeds the limit of {limit} bytes",
        kind="too_large",
        url=str(request.url),
        limit=limit,
    )


def _outputs(response: httpx.Response, body: bytes, url: httpx.URL) -> NodeOutput:
    text = body.decode(_charset(response), errors="replace")
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    out: dict[str, Any] = {
        "status": response.status_code,
        "body": text,
        "headers": headers,
        "url": str(url),
    }
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if body and (media_type == "application/json" or media_type.endswith("+json")):
        # A body that says JSON but is not still reaches the workflow as text on `body`.
        with contextlib.suppress(ValueError):
            out["json"] = parse_json(text)
    return out


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"
    return charset


def _dry_run(request: PreparedRequest) -> NodeOutput:
    """What a simulate run returns: the request that would be sent, without sending it."""
    shown_headers = {
        name: "***" if any(m in name.lower() for m in _SENSITIVE_MARKERS) else value
        for name, value in request.headers
    }
    body: Any = None
    if request.content is not None:
        try:
            body = request.content.decode()
        except UnicodeDecodeError:
            body = to_json(request.content)  # base64
    description = {
        "dry_run": True,
        "method": request.method,
        "url": str(request.url),
        "headers": shown_headers,
        "body": body,
    }
    return {
        "status": 0,
        "body": f"dry run: {request.line} (not sent)",
        "headers": {},
        "url": str(request.url),
        "json": description,
    }


def _parse_url(raw: Any) -> httpx.URL:
    if not isinstance(raw, str | httpx.URL) or not str(raw).strip():
        raise NodeFailure("http.request needs a URL (config 'url' or the 'url' input)", "config")
    try:
        url = httpx.URL(str(raw).strip())
    except httpx.InvalidURL as exc:
        raise NodeFailure(f"invalid URL {raw!r}: {exc}", kind="config") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise NodeFailure(f"http.request needs an http(s) URL with a host, got {raw!r}", "config")
    return url


def _redirect_url(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location.strip())
    except httpx.InvalidURL as exc:
        raise NodeFailure(f"invalid redirect location {location!r}: {exc}", kind="http") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise NodeFailure(f"refusing to follow a redirect to {location!r}", kind="http")
    return target


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, _port(url)


def _query_params(query: Mapping[str, Any]) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for key, value in query.items():
        # A list repeats the key (?tag=a&tag=b); None leaves the key out.
        for item in value if isinstance(value, list | tuple) else (value,):
            if item is not None:
                params.append((str(key), _scalar_text(item)))
    return params


def _headers(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    headers: list[tuple[str, str]] = []
    for name, value in as_mapping(raw, "headers").items():
        if value is None:
            continue
        text = _scalar_text(value)
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise NodeFailure(f"invalid header name {name!r}", kind="config")
        if not _HEADER_VALUE.fullmatch(text):
            raise NodeFailure(
                f"invalid value for header {name!r}: use printable ASCII, no line breaks",
                kind="config",
            )
        headers.append((name, text))
    return headers


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return as_text(value)


def _encode_body(body: Any, headers: list[tuple[str, str]]) -> tuple[bytes | None, str | None]:
    """The body's bytes, and the Content-Type to add when the headers have none."""
    if body is None:
        return None, None
    declared = next((v for k, v in headers if k.lower() == "content-type"), None)
    if isinstance(body, bytes | bytearray):
        return bytes(body), None
    if isinstance(body, str):
        return body.encode(), None
    if declared is not None and declared.lower().startswith("application/x-www-form-urlencoded"):
        if not isinstance(body, Mapping):
            raise NodeFailure("a form-encoded body must be an object", kind="config")
        return urlencode(_query_params(body)).encode(), None
    return dump_json(body).encode(), None if declared is not None else "application/json"


NODE_TYPES: tuple[NodeType, ...] = (HttpRequest(),)
