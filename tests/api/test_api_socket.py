"""The events socket under load: a client that stops reading is told what it missed."""

from __future__ import annotations

import json
import time
from typing import Any

from websockets.sync.client import connect

from api.conftest import EVENTS_QUEUE
from api.servers import ThreadServer
from runnel.model.events import Event, EventType

TOTAL = 1000
BATCH = 100


def info(execution_id: str, seq: int) -> Event:
    return Event(
        execution_id=execution_id,
        seq=seq,
        type=EventType.NODE_EVENT,
        timestamp=time.time(),
        workflow_id="lag-wf",
        node_id="n",
        data={"kind": "info", "message": f"event {seq}"},
    )


def test_a_client_that_stops_reading_gets_lagged(api_server: ThreadServer) -> None:
    platform = api_server.platform
    assert platform is not None
    url = f"{api_server.ws_url}/api/events?execution_id=lag-exec"
    with connect(url, additional_headers=api_server.auth) as ws:
        # The client reads nothing while 1,000 events are published, in batches on the
        # server's loop; publishing never waits for it.
        for start in range(1, TOTAL + 1, BATCH):
            batch = [info("lag-exec", seq) for seq in range(start, start + BATCH)]
            api_server.call(lambda batch=batch: [platform.bus.publish(e) for e in batch])
        received: list[int] = []
        lags: list[dict[str, Any]] = []
        while len(received) + sum(lag["missed"] for lag in lags) < TOTAL:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "Lagged":
                lags.append(message)
            else:
                assert message["type"] == "NodeEvent"
                assert message["event"] == {
                    "event_type": "Info",
                    "message": f"event {message['seq']}",
                }
                received.append(message["seq"])
        # Every event is either delivered, in order, or counted in a Lagged message.
        assert lags, "the slow client was never told it lagged"
        assert received == sorted(received) and len(received) >= EVENTS_QUEUE
        assert len(received) + sum(lag["missed"] for lag in lags) == TOTAL
        assert all(lag["execution_ids"] == ["lag-exec"] for lag in lags)
        assert received[:EVENTS_QUEUE] == list(range(1, EVENTS_QUEUE + 1))
        # And the socket is still live.
        api_server.call(lambda: platform.bus.publish(info("lag-exec", TOTAL + 1)))
        assert json.loads(ws.recv(timeout=30))["seq"] == TOTAL + 1


def test_other_executions_and_workflows_are_filtered_out(api_server: ThreadServer) -> None:
    platform = api_server.platform
    assert platform is not None
    url = f"{api_server.ws_url}/api/events?workflow_id=lag-wf"
    with connect(url, additional_headers=api_server.auth) as ws:
        other = Event("x", 1, EventType.NODE_EVENT, time.time(), "other-wf", "n", {"kind": "info"})
        api_server.call(lambda: platform.bus.publish(other))
        api_server.call(lambda: platform.bus.publish(info("filtered", 7)))
        message = json.loads(ws.recv(timeout=30))
    assert (message["execution_id"], message["seq"]) == ("filtered", 7)
