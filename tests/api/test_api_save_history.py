"""``settings.save_history`` through the Flow Engine API: the wire field, the webhook and
execute answers of runs that keep no history, and the live events socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runnel.api.app import create_app
from runnel.platform import Platform
from runnel.settings import Settings


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    platform = await Platform.open(Settings(data_dir=tmp_path).platform_config())
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


@pytest.fixture
async def client(platform: Platform, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    bootstrap = await platform.accounts.ensure_owner(tmp_path)
    assert bootstrap is not None
    app = create_app(platform, Settings(data_dir=tmp_path, rate_limit_per_second=0))
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {bootstrap.token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://runnel.test", headers=headers
    ) as client:
        yield client


def document(workflow_id: str, history: str | None, path: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": workflow_id,
        "nodes": [
            {
                "id": "mark",
                "node_type": "transform.set",
                "config": {"values": {"type": "Json", "value": {"seen": True}}},
            }
        ],
        "triggers": [{"id": "hook", "trigger_type": {"type": "Webhook", "path": path}}],
    }
    if history is not None:
        doc["settings"] = {"save_history": history}
    return doc


async def test_the_setting_round_trips_and_a_bad_value_names_the_field(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/workflows", json=document("wf", "failed", "a"))
    assert created.status_code == 200, created.text
    read = (await client.get("/api/workflows/wf")).json()
    assert read["settings"]["save_history"] == "failed"
    default = await client.post("/api/workflows", json=document("plain", None, "b"))
    assert "save_history" not in default.json().get("settings", {})
    bad = await client.post("/api/workflows", json=document("bad", "some", "c"))
    assert bad.status_code == 400
    assert "settings.save_history" in bad.text


@pytest.mark.parametrize(("history", "kept"), [("all", 1), ("failed", 0), ("none", 0)])
async def test_webhook_and_execute_answer_alike_whatever_is_kept(
    client: httpx.AsyncClient, history: str, kept: int
) -> None:
    assert (await client.post("/api/workflows", json=document("wf", history, "h"))).is_success
    answer = await client.post("/webhooks/h", json={"a": 1})
    assert answer.status_code == 200
    assert answer.json() == {"a": 1, "seen": True}
    executed = await client.post("/api/workflows/wf/execute", json={"inputs": {}})
    assert executed.status_code == 200, executed.text
    body = executed.json()
    assert (body["status"], body["completed_nodes"], body["total_nodes"]) == ("succeeded", 1, 1)
    seen = {"type": "Object", "value": {"seen": {"type": "Bool", "value": True}}}
    assert body["outputs"] == {"mark": {"value": seen}}
    listed = (await client.get("/api/executions?workflow_id=wf")).json()
    assert listed["total"] == 2 * kept
