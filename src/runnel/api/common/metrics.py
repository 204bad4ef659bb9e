"""Prometheus metrics: executions, node durations, queue depth, open sockets, HTTP latency.

Each app has its own ``CollectorRegistry`` (several apps in one test process never clash).
Execution and node metrics come from the event bus (``observe``), so they count every
execution whoever started it; HTTP latency comes from ``HttpMetricsMiddleware``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runnel.bus import Bus, Lagged
from runnel.model.events import Event, EventType

__all__ = ["CONTENT_TYPE_LATEST", "HttpMetricsMiddleware", "Metrics"]

log = logging.getLogger("runnel.api.metrics")

_NODE_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)
_HTTP_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
#: Events the metrics observer may have waiting before it lags (it only counts, so it keeps
#: up easily; a lag is counted in ``runnel_metrics_events_missed_total``).
_OBSERVER_QUEUE: Final = 65536


class Metrics:
    """The app's collectors and the code that feeds them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.executions_started = Counter(
            "runnel_executions_started", "Executions that started running.", registry=r
        )
        self.executions_finished = Counter(
            "runnel_executions_finished",
            "Executions that ended, by status.",
            ["status"],
            registry=r,
        )
        self.node_duration = Histogram(
            "runnel_node_duration_seconds",
            "Node run time, by node type.",
            ["node_type"],
            buckets=_NODE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "runnel_queue_depth", "Executions queued and not yet claimed.", registry=r
        )
        self.open_sockets = Gauge(
            "runnel_open_sockets", "Open event sockets.", ["dialect"], registry=r
        )
        self.http_latency = Histogram(
            "runnel_http_request_duration_seconds",
            "HTTP request latency, by method, route template and status.",
            ["method", "route", "status"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.events_missed = Counter(
            "runnel_metrics_events_missed", "Events the metrics observer missed.", registry=r
        )

    def observe(self, event: Event) -> None:
        """Count one execution event."""
        kind = event.type
        if kind is EventType.EXECUTION_STARTED:
            self.executions_started.inc()
        elif kind is EventType.EXECUTION_FINISHED:
            self.executions_finished.labels(str(event.data.get("status", "unknown"))).inc()
        elif kind is EventType.NODE_FINISHED or kind is EventType.NODE_FAILED:
            if kind is EventType.NODE_FINISHED and event.data.get("status") == "failed":
                return  # its failure was observed with the node.failed event
            duration = event.data.get("duration_ms")
            if isinstance(duration, int | float) and not isinstance(duration, bool):
                node_type = str(event.data.get("node_type", "unknown"))
                self.node_duration.labels(node_type).observe(max(duration, 0) / 1000.0)

    async def observe_bus(self, bus: Bus) -> None:
        """Feed ``observe`` from ``bus`` until cancelled or the bus closes."""
        subscription = bus.subscribe(max_queue=_OBSERVER_QUEUE)
        try:
            async for item in subscription:
                if isinstance(item, Lagged):
                    self.events_missed.inc(item.missed)
                else:
                    self.observe(item)
        finally:
            subscription.close()

    def start_observer(self, bus: Bus) -> asyncio.Task[None]:
        return asyncio.create_task(self.observe_bus(bus), name="runnel-metrics-observer")

    @staticmethod
    async def stop_observer(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class HttpMetricsMiddleware:
    """Pure ASGI: times each HTTP request, labelled by its route *template* (bounded)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
