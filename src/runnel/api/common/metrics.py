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
#: Node durations ``Metrics.observe`` keeps before it folds them into the histogram.
_FOLD_AT: Final = 4096


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
        # Labelled children, looked up once each: ``labels()`` validates and locks per call,
        # a cost every request and node paid. As bounded as the label values themselves.
        self._http: dict[tuple[str, str, int], Histogram] = {}
        self._finished: dict[str, Counter] = {}
        self._nodes: dict[str, Histogram] = {}
        # What ``observe`` counted and ``fold`` has not moved into the collectors yet.
        self._started = 0
        self._finished_counts: dict[str, int] = {}
        self._durations: list[tuple[str, float]] = []

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request's latency."""
        key = (method, route, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = self.http_latency.labels(method, route, str(status))
        child.observe(seconds)

    def observe(self, event: Event) -> None:
        """Count one execution event. Cheap (plain ints and a list): the counts reach the
        Prometheus collectors when they are read (``exposition``) or pile up (``fold``)."""
        kind = event.type
        if kind is EventType.EXECUTION_STARTED:
            self._started += 1
        elif kind is EventType.EXECUTION_FINISHED:
            status = event.data.get("status", "unknown")
            if type(status) is not str:
                status = str(status)
            counts = self._finished_counts
            counts[status] = counts.get(status, 0) + 1
        elif kind is EventType.NODE_FINISHED or kind is EventType.NODE_FAILED:
            data = event.data
            if kind is EventType.NODE_FINISHED and data.get("status") == "failed":
                return  # its failure was observed with the node.failed event
            duration = data.get("duration_ms")
            if isinstance(duration, int | float) and not isinstance(duration, bool):
                durations = self._durations
                node_type = data.get("node_type", "unknown")
                if type(node_type) is not str:
                    node_type = str(node_type)
                durations.append((node_type, duration))
                if len(durations) >= _FOLD_AT:
                    self.fold()

    def fold(self) -> None:
        """Move the counts ``observe`` kept into the Prometheus collectors."""
        if self._started:
            started, self._started = self._started, 0
            self.executions_started.inc(started)
        if self._finished_counts:
            finished_counts, self._finished_counts = self._finished_counts, {}
            for status, count in finished_counts.items():
                finished = self._finished.get(status)
                if finished is None:
                    finished = self._finished[status] = self.executions_finished.labels(status)
                finished.inc(count)
        if self._durations:
            durations, self._durations = self._durations, []
            for node_type, duration in durations:
                histogram = self._nodes.get(node_type)
                if histogram is None:
                    histogram = self._nodes[node_type] = self.node_duration.labels(node_type)
                histogram.observe(max(duration, 0) / 1000.0)

    async def observe_bus(self, bus: Bus) -> None:
        """Feed ``observe`` from ``bus`` until cancelled or the bus closes."""
        subscription = bus.subscribe(max_queue=_OBSERVER_QUEUE)
        observe = self.observe
        try:
            async for first in subscription:
                # Everything queued by now in one go, without a coroutine step per event.
                item: Event | Lagged | None = first
                while item is not None:
                    if isinstance(item, Lagged):
                        self.events_missed.inc(item.missed)
                    else:
                        observe(item)
                    item = subscription.get_nowait()
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
        self.fold()
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
            self.metrics.observe_http(
                scope["method"], template, status, time.perf_counter() - started
            )
