"""flow8 channels against a real server: credentials never in an answer nor in the
database file, a signed webhook delivery and a Slack delivery to a loopback HTTP server, a
real SMTP delivery to a local aiosmtpd server, the ``notify.channel`` node and a flow's
notify-on-finish."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from e2e.flow8 import ENDED, Person, Receiver, wait_for_state
from e2e.harness import RunningServer, free_port
from e2e.test_e2e_flow8_flows import PAGE_KEYS, error_of, flowlet, make_flow
from e2e.test_e2e_flow8_plays import layers, run

pytestmark = pytest.mark.e2e

SECRET = "hmac-secret-b7d1f0e2"
PASSWORD = "smtp-password-9a8b7c"
HOOK_TOKEN = "hook-token-5f4e3d"


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.arrived.set()
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


def webhook(person: Person, receiver: Receiver, path: str) -> dict[str, Any]:
    made = person.client.post(
        "/api/channels",
        json={
            "name": f"hook {path}",
            "type": "webhook",
            "config": {
                "url": f"{receiver.url}/{path}",
                "secret": SECRET,
                "headers": {"X-Token": HOOK_TOKEN},
            },
        },
    )
    assert made.status_code == 201, made.text
    channel: dict[str, Any] = made.json()
    return channel


def assert_no_secret(text: str) -> None:
    for secret in (SECRET, PASSWORD, HOOK_TOKEN, "slack-secret-path"):
        assert secret not in text


def test_channel_credentials_are_masked_and_sealed(
    flow8_people: dict[str, Person], receiver: Receiver, server: RunningServer
) -> None:
    alice = flow8_people["alice"].client
    channel = webhook(flow8_people["alice"], receiver, "masked")
    assert channel["config"]["secret"] == "********"
    assert channel["config"]["headers"] == "********"
    assert channel["config"]["url"] == f"{receiver.url}/masked"
    slack = alice.post(
        "/api/channels",
        json={
            "name": "slack",
            "type": "slack",
            "config": {"webhookUrl": f"{receiver.url}/slack-secret-path"},
        },
    )
    email = alice.post(
        "/api/channels",
        json={
            "name": "mail",
            "type": "email",
            "config": {
                "host": "127.0.0.1",
                "port": 25,
                "password": PASSWORD,
                "from": "runnel@example.com",
                "to": ["ops@example.com"],
            },
        },
    )
    answers = [
        json.dumps(channel),
        slack.text,
        email.text,
        alice.get(f"/api/channels/{channel['id']}").text,
        alice.get("/api/channels").text,
        alice.put(f"/api/channels/{channel['id']}", json={"name": "renamed"}).text,
    ]
    for text in answers:
        assert_no_secret(text)
    listed = alice.get("/api/channels").json()
    assert set(listed) == PAGE_KEYS
    # At rest the credentials are sealed with the instance key.
    for name in ("runnel.db", "runnel.db-wal"):
        path = server.data_dir / name
        if path.exists():
            assert_no_secret(path.read_bytes().decode("latin-1"))
    # Strangers do not see channels; bad settings say what is wrong.
    error_of(
        flow8_people["eve"].client.get(f"/api/channels/{channel['id']}"), 404, "CHANNEL_NOT_FOUND"
    )
    bad = alice.post(
        "/api/channels", json={"name": "x", "type": "webhook", "config": {"url": "ftp://x"}}
    )
    assert "url" in error_of(bad, 400, "VALIDATION_ERROR")["message"]
    unknown = alice.post("/api/channels", json={"name": "x", "type": "pigeon", "config": {}})
    error_of(unknown, 400, "VALIDATION_ERROR")
    assert alice.delete(f"/api/channels/{channel['id']}").status_code == 200
    error_of(alice.delete(f"/api/channels/{channel['id']}"), 404, "CHANNEL_NOT_FOUND")


def test_a_signed_webhook_delivery(flow8_people: dict[str, Person], receiver: Receiver) -> None:
    alice = flow8_people["alice"].client
    channel = webhook(flow8_people["alice"], receiver, "signed")
    # An update that sends the mask back keeps the stored secret.
    kept = alice.put(
        f"/api/channels/{channel['id']}",
        json={"config": {"secret": "********", "url": f"{receiver.url}/signed"}},
    )
    assert kept.status_code == 200
    tested = alice.post(f"/api/channels/{channel['id']}/test")
    assert tested.status_code == 200 and tested.json()["ok"] is True
    request = receiver.wait_for(lambda r: r.path == "/signed")
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-runnel-signature"] == f"sha256={expected}"
    assert request.headers["x-token"] == HOOK_TOKEN
    body = json.loads(request.body)
    assert body["title"] == "runnel test message" and body["data"] == {"test": True}


def test_a_slack_delivery(flow8_people: dict[str, Person], receiver: Receiver) -> None:
    alice = flow8_people["alice"].client
    made = alice.post(
        "/api/channels",
        json={"name": "team", "type": "slack", "config": {"webhookUrl": f"{receiver.url}/slack"}},
    ).json()
    assert alice.post(f"/api/channels/{made['id']}/test").json()["ok"] is True
    request = receiver.wait_for(lambda r: r.path == "/slack")
    assert json.loads(request.body)["text"].startswith("*runnel test message*")


def test_a_real_smtp_delivery(flow8_people: dict[str, Person], smtp: tuple[int, Mailbox]) -> None:
    port, mailbox = smtp
    alice = flow8_people["alice"].client
    made = alice.post(
        "/api/channels",
        json={
            "name": "mail",
            "type": "email",
            "config": {
                "host": "127.0.0.1",
                "port": port,
                "tls": "none",
                "from": "runnel@example.com",
                "to": "ops@example.com",
            },
        },
    ).json()
    assert made["config"]["to"] == ["ops@example.com"]
    tested = alice.post(f"/api/channels/{made['id']}/test")
    assert tested.status_code == 200, tested.text
    assert mailbox.arrived.wait(20)
    sender, recipients, content = mailbox.messages[-1]
    assert sender == "runnel@example.com" and recipients == ["ops@example.com"]
    message = message_from_bytes(content)
    assert message["Subject"] == "runnel test message"
    # An unreachable server is a clear 502.
    broken = alice.post(
        "/api/channels",
        json={
            "name": "down",
            "type": "email",
            "config": {"host": "127.0.0.1", "port": free_port(), "from": "a@b.c", "to": ["d@e.f"]},
        },
    ).json()
    error_of(alice.post(f"/api/channels/{broken['id']}/test"), 502, "DELIVERY_FAILED")


def test_notify_node_and_notify_on_finish(
    flow8_people: dict[str, Person], receiver: Receiver, server: RunningServer
) -> None:
    alice = flow8_people["alice"]
    channel = webhook(alice, receiver, "notify")
    flow = make_flow(
        alice,
        "Notifying",
        flowlet(
            "tell",
            "notify",
            args={"channel": channel["id"], "title": "Hello", "text": "{{ $args.msg }}"},
        ),
        notify={"onFinish": [channel["name"]]},
    )
    play_id = run(alice, flow["id"], {"msg": "from a flowlet"})
    assert wait_for_state(server, alice, play_id, ENDED)["state"] == "DONE"
    sent = receiver.wait_for(
        lambda r: r.path == "/notify" and json.loads(r.body)["text"] == "from a flowlet"
    )
    assert json.loads(sent.body)["title"] == "Hello"
    assert layers(alice, play_id)["tell"]["out"]["delivery"]["type"] == "webhook"
    finished = receiver.wait_for(
        lambda r: r.path == "/notify" and json.loads(r.body)["data"].get("playId") == play_id
    )
    assert json.loads(finished.body)["data"]["state"] == "DONE"
    # Another user's flow cannot send through alice's channel.
    eve = flow8_people["eve"]
    stolen = make_flow(eve, "Stealing", flowlet("tell", "notify", args={"channel": channel["id"]}))
    play_id = run(eve, stolen["id"])
    play = wait_for_state(server, eve, play_id, ENDED)
    assert play["state"] == "FAIL" and play["error"]["code"] == "DELIVERY"
