"""``Metrics``: events are counted cheaply and reach the collectors when scraped."""

from __future__ import annotations

import asyncio
from typing import Any

from runnel.api.common.metrics import Metrics
from runnel.bus import MemoryBus
from runnel.model.events import Event, EventType


def _event(kind: EventType, seq: int, **data: Any) -> Event:
    return Event("x1", seq, kind, 1.0, "wf", "n1", data)


def test_counts_reach_the_exposition() -> None:
    metrics = Metrics()
    metrics.observe(_event(EventType.EXECUTION_STARTED, 1))
    metrics.observe(_event(EventType.NODE_STARTED, 2))
    metrics.observe(
        _event(EventType.NODE_FINISHED, 3, node_type="transform.set", duration_ms=2, status="ok")
    )
    metrics.observe(_event(EventType.NODE_FAILED, 4, node_type="http.request", duration_ms=7))
    # Counted with the node.failed event already.
    metrics.observe(
        _event(EventType.NODE_FINISHED, 5, node_type="http.request", duration_ms=7, status="failed")
    )
    metrics.observe(_event(EventType.EXECUTION_FINISHED, 6, status="succeeded"))
    metrics.observe(_event(EventType.EXECUTION_FINISHED, 7, status="succeeded"))
    metrics.observe(_event(EventType.EXECUTION_FINISHED, 8))
    text = metrics.exposition().decode()
    assert "runnel_executions_started_total 1.0" in text
    assert 'runnel_executions_finished_total{status="succeeded"} 2.0' in text
    assert 'runnel_executions_finished_total{status="unknown"} 1.0' in text
    assert 'runnel_node_duration_seconds_count{node_type="transform.set"} 1.0' in text
    assert 'runnel_node_duration_seconds_count{node_type="http.request"} 1.0' in text
    assert 'runnel_node_duration_seconds_sum{node_type="http.request"} 0.007' in text
    # Nothing counted twice by a second scrape.
    metrics.observe(_event(EventType.EXECUTION_STARTED, 9))
    assert "runnel_executions_started_total 2.0" in metrics.exposition().decode()


async def test_the_observer_drains_the_bus() -> None:
    metrics = Metrics()
    bus = MemoryBus()
    task = metrics.start_observer(bus)
    await asyncio.sleep(0)
    for seq in range(5):
        bus.publish(_event(EventType.EXECUTION_STARTED, seq))
    for _ in range(3):
        await asyncio.sleep(0)
    await Metrics.stop_observer(task)
    assert "runnel_executions_started_total 5.0" in metrics.exposition().decode()
