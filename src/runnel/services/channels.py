"""Notification channels: named destinations a flow (or a ``notify.channel`` node) sends to.

Types and their settings (wire names):

- ``webhook``: ``url``; optional ``secret`` (an HMAC-SHA256 of the body is sent in
  ``signatureHeader``, default ``X-Runnel-Signature: sha256=<hex>``) and ``headers``;
- ``slack``: ``webhookUrl`` (an incoming-webhook URL);
- ``email``: ``host``, ``port``, ``tls`` (``none``, ``starttls``, ``tls``), ``username``,
  ``password``, ``from``, ``to`` (a list of addresses).

The credentials (``secret``, ``headers``, ``webhookUrl``, ``password``) are sealed with
the instance key before they reach the store and are masked (``"********"``) in every
answer; an update that sends the mask (or leaves the field out) keeps the stored value.
HTTP deliveries follow the ``http.request`` node's address policy (no private, loopback or
link-local targets unless the operator allows the host).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Final

import httpx

from runnel.auth.sealing import SealBroken, Sealer
from runnel.engine.services import HttpPolicy
from runnel.engine.signals import NodeFailure
from runnel.model.workflow import Workflow
from runnel.nodes._netguard import check_target
from runnel.services.access import Access, Action, Resource
from runnel.services.accounts import Principal, Role
from runnel.services.errors import InvalidInput, NotFound, ProblemDetail, ServiceError
from runnel.store import SqlStore
from runnel.store.channels import ChannelRecord

__all__ = [
    "CHANNEL_TYPES",
    "MASK",
    "Channel",
    "ChannelService",
    "Delivery",
    "DeliveryFailed",
    "Message",
]

log = logging.getLogger(__name__)

MASK: Final = "********"
CHANNEL_TYPES: Final = ("webhook", "slack", "email")
TLS_MODES: Final = ("none", "starttls", "tls")
DEFAULT_SIGNATURE_HEADER: Final = "X-Runnel-Signature"
SEND_TIMEOUT_SECONDS: Final = 15.0

#: Settings fields per type: (name, is a credential, required).
_FIELDS: Final[Mapping[str, tuple[tuple[str, bool, bool], ...]]] = {
    "webhook": (
        ("url", False, True),
        ("secret", True, False),
        ("headers", True, False),
        ("signatureHeader", False, False),
    ),
    "slack": (("webhookUrl", True, True),),
    "email": (
        ("host", False, True),
        ("port", False, False),
        ("tls", False, False),
        ("username", False, False),
        ("password", True, False),
        ("from", False, True),
        ("to", False, True),
    ),
}


class DeliveryFailed(ServiceError):
    """A message could not be delivered through a channel."""

    code = "DELIVERY_FAILED"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    channel_id: str
    type: str
    detail: str


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel as answers show it: credentials masked."""

    id: str
    name: str
    type: str
    settings: Mapping[str, Any]
    owner: str | None
    group_id: str | None
    created_at: float
    updated_at: float


def _masked(record: ChannelRecord, secret: Mapping[str, Any]) -> dict[str, Any]:
    settings = dict(record.config)
    for name, credential, _ in _FIELDS.get(record.type, ()):
        if credential:
            settings[name] = MASK if secret.get(name) not in (None, "", {}) else None
    return settings


class ChannelService:
    """Channels through the API, and deliveries for flows and nodes."""

    def __init__(
        self,
        store: SqlStore,
        access: Access,
        sealer: Sealer,
        *,
        http_client: httpx.AsyncClient | None = None,
        http_policy: HttpPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.access = access
        self._sealer = sealer
        self._http = http_client
        self.http_policy = http_policy if http_policy is not None else HttpPolicy()
        self._clock = clock

    # -- settings -------------------------------------------------------------------------

    def _secret(self, record: ChannelRecord) -> dict[str, Any]:
        try:
            opened = self._sealer.open_text(record.secret, context=f"channel:{record.id}")
        except SealBroken as exc:
            raise DeliveryFailed(
                f"channel {record.id}: its credentials do not open: {exc}"
            ) from None
        loaded = json.loads(opened)
        return loaded if isinstance(loaded, dict) else {}

    def _view(self, record: ChannelRecord) -> Channel:
        try:
            secret = self._secret(record)
        except DeliveryFailed:
            secret = {}
        return Channel(
            id=record.id,
            name=record.name,
            type=record.type,
            settings=_masked(record, secret),
            owner=record.owner,
            group_id=record.group_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )

    def _split(
        self,
        kind: str,
        settings: Mapping[str, Any],
        previous_secret: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config, secret) from ``settings``; ``InvalidInput`` naming every problem."""
        problems: list[ProblemDetail] = []
        fields = _FIELDS.get(kind)
        if fields is None:
            raise InvalidInput(
                f"invalid channel: type must be one of {', '.join(CHANNEL_TYPES)}",
                [ProblemDetail(f"must be one of {', '.join(CHANNEL_TYPES)}", "type")],
            )
        known = {name for name, _, _ in fields}
        for name in settings:
            if name not in known:
                problems.append(
                    ProblemDetail(
                        f"unknown for a {kind} channel ({', '.join(sorted(known))})", name
                    )
                )
        config: dict[str, Any] = {}
        secret: dict[str, Any] = {}
        for name, credential, required in fields:
            value = settings.get(name)
            if credential and (value is None or value == MASK):
                value = previous_secret.get(name)
            if value in (None, ""):
                if required:
                    problems.append(ProblemDetail("is required", name))
                continue
            if name == "to" and isinstance(value, str):
                value = [value]
            (secret if credential else config)[name] = value
        problems.extend(_check_values(kind, {**config, **secret}))
        if problems:
            raise InvalidInput("invalid channel: " + "; ".join(map(str, problems)), problems)
        return config, secret

    def _seal(self, channel_id: str, secret: Mapping[str, Any]) -> str:
        return self._sealer.seal_text(json.dumps(dict(secret)), context=f"channel:{channel_id}")

    async def _record(self, principal: Principal, channel_id: str, action: Action) -> ChannelRecord:
        record = await self.store.get_channel(channel_id)
        if record is None:
            raise NotFound("channel", channel_id)
        await self.access.check(
            principal,
            Resource("channel", channel_id, owner=record.owner, group_id=record.group_id),
            action,
        )
        return record

    async def _check_group(self, principal: Principal, group_id: str | None) -> None:
        if group_id is None:
            return
        if await self.store.get_group(group_id) is None:
            raise NotFound("group", group_id)
        await self.access.check(
            principal, Resource("group", group_id, owner=None, group_id=group_id), Action.EDIT
        )

    # -- CRUD -----------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        name: str,
        kind: str,
        settings: Mapping[str, Any],
        group_id: str | None = None,
    ) -> Channel:
        _check_name(name)
        await self._check_group(principal, group_id)
        config, secret = self._split(kind, settings, {})
        channel_id = secrets.token_hex(12)
        now = self._clock()
        record = ChannelRecord(
            id=channel_id,
            name=name.strip(),
            type=kind,
            config=config,
            secret=self._seal(channel_id, secret),
            created_at=now,
            updated_at=now,
            owner=principal.user_id,
            group_id=group_id,
        )
        await self.store.create_channel(record)
        return self._view(record)

    async def update(
        self,
        principal: Principal,
        channel_id: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        settings: Mapping[str, Any] | None = None,
        group_id: str | None = None,
        change_group: bool = False,
    ) -> Channel:
        """Change what is given (the group only with ``change_group``); credentials left
        out or masked keep their values."""
        record = await self._record(principal, channel_id, Action.EDIT)
        new_group = group_id if change_group else record.group_id
        if new_group != record.group_id:
            await self._check_group(principal, new_group)
        new_kind = kind or record.type
        previous = self._secret(record) if new_kind == record.type else {}
        merged = (
            {**record.config, **(settings or {})}
            if new_kind == record.type
            else dict(settings or {})
        )
        config, secret = self._split(new_kind, merged, previous)
        if name is not None:
            _check_name(name)
        updated = ChannelRecord(
            id=record.id,
            name=(name or record.name).strip(),
            type=new_kind,
            config=config,
            secret=self._seal(record.id, secret),
            created_at=record.created_at,
            updated_at=self._clock(),
            owner=record.owner,
            group_id=new_group,
        )
        if not await self.store.update_channel(updated):
            raise NotFound("channel", channel_id)
        return self._view(updated)

    async def get(self, principal: Principal, channel_id: str) -> Channel:
        return self._view(await self._record(principal, channel_id, Action.VIEW))

    async def list(
        self, principal: Principal, *, limit: int = 25, offset: int = 0
    ) -> tuple[list[Channel], int]:
        records, total = await self.store.list_channels(Access.viewer(principal), limit, offset)
        return [self._view(record) for record in records], total

    async def delete(self, principal: Principal, channel_id: str) -> None:
        await self._record(principal, channel_id, Action.EDIT)
        if not await self.store.delete_channel(channel_id):
            raise NotFound("channel", channel_id)

    async def test(self, principal: Principal, channel_id: str) -> Delivery:
        """Send a test message (needs the ``run`` right on the channel)."""
        record = await self._record(principal, channel_id, Action.RUN)
        message = Message(
            title="runnel test message",
            text=f"This is a test of channel {record.name!r}; it works.",
            data={"test": True},
        )
        return await self._deliver(record, message)

    # -- sending for flows ----------------------------------------------------------------

    async def may_use(self, workflow: Workflow, record: ChannelRecord) -> bool:
        """Whether ``workflow`` may send through the channel: a group's flow uses the
        group's channels, anyone else's flow its owner's own (an unowned workflow, made
        through the Flow Engine API, those of admins). So a group editor cannot point a
        flow at a member's private channel."""
        if workflow.group is not None:
            return record.group_id == workflow.group
        if workflow.owner is not None:
            return record.owner == workflow.owner and record.group_id is None
        if record.owner is None:
            return False
        owner = await self.store.get_user(record.owner)
        return owner is not None and owner.role == Role.ADMIN.value

    async def send_for(self, workflow: Workflow, channel: str, message: Message) -> Delivery:
        """Deliver ``message`` through ``channel`` (an id or a name) for ``workflow``."""
        record = await self.store.get_channel(channel)
        if record is None or not await self.may_use(workflow, record):
            record = await self._by_name(workflow, channel)
        if record is None:
            raise DeliveryFailed(f"channel {channel!r} not found (or not usable by this flow)")
        return await self._deliver(record, message)

    async def _by_name(self, workflow: Workflow, name: str) -> ChannelRecord | None:
        records, _ = await self.store.list_channels(None, 10_000, 0)
        for record in records:
            if record.name == name and await self.may_use(workflow, record):
                return record
        return None

    async def _deliver(self, record: ChannelRecord, message: Message) -> Delivery:
        secret = self._secret(record)
        if record.type == "email":
            return await self._email(record, secret, message)
        return await self._http_post(record, secret, message)

    async def _http_post(
        self, record: ChannelRecord, secret: Mapping[str, Any], message: Message
    ) -> Delivery:
        if record.type == "slack":
            url = str(secret.get("webhookUrl"))
            body = json.dumps({"text": f"*{message.title}*\n{message.text}"}).encode()
            headers = {"content-type": "application/json"}
        else:
            url = str(record.config.get("url"))
            payload = {
                "channel": record.name,
                "title": message.title,
                "text": message.text,
                "data": dict(message.data),
                "sentAt": self._clock(),
            }
            body = json.dumps(payload, default=str).encode()
            headers = {"content-type": "application/json"}
            headers.update({str(k): str(v) for k, v in (secret.get("headers") or {}).items()})
            key = secret.get("secret")
            if key:
                digest = hmac.new(str(key).encode(), body, hashlib.sha256).hexdigest()
                name = str(record.config.get("signatureHeader") or DEFAULT_SIGNATURE_HEADER)
                headers[name] = f"sha256={digest}"
        target = httpx.URL(url)
        try:
            await check_target(
                target.host,
                target.port or (443 if target.scheme == "https" else 80),
                self.http_policy.allowed_hosts,
            )
        except NodeFailure as exc:
            raise DeliveryFailed(f"{record.type} channel {record.name!r}: {exc.message}") from None
        try:
            if self._http is not None:
                response = await self._http.post(
                    target, content=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS
                )
            else:
                async with httpx.AsyncClient() as client:
                    response = await client.post(
                        target, content=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS
                    )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(
                f"{record.type} channel {record.name!r}: {exc or type(exc).__name__}"
            ) from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(
                f"{record.type} channel {record.name!r}: the server answered {response.status_code}"
            )
        return Delivery(record.id, record.type, f"delivered (HTTP {response.status_code})")

    async def _email(
        self, record: ChannelRecord, secret: Mapping[str, Any], message: Message
    ) -> Delivery:
        config = record.config
        recipients = [str(a) for a in config.get("to") or []]
        email = EmailMessage()
        email["Subject"] = message.title
        email["From"] = str(config.get("from"))
        email["To"] = ", ".join(recipients)
        text = message.text
        if message.data:
            text += "\n\n" + json.dumps(dict(message.data), indent=2, default=str)
        email.set_content(text)
        try:
            await asyncio.to_thread(_send_mail, config, secret.get("password"), email)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise DeliveryFailed(
                f"email channel {record.name!r}: {exc or type(exc).__name__}"
            ) from None
        return Delivery(record.id, record.type, f"sent to {', '.join(recipients)}")


def _send_mail(config: Mapping[str, Any], password: Any, email: EmailMessage) -> None:
    host = str(config.get("host"))
    tls = str(config.get("tls") or "none")
    port = int(config.get("port") or (465 if tls == "tls" else 25))
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if tls == "tls":
        smtp = smtplib.SMTP_SSL(host, port, timeout=SEND_TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=SEND_TIMEOUT_SECONDS)
    with smtp:
        if tls == "starttls":
            smtp.starttls(context=context)
        username = config.get("username")
        if username:
            smtp.login(str(username), str(password or ""))
        smtp.send_message(email)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput(
            "invalid channel: name must be 1-200 characters",
            [ProblemDetail("must be 1-200 characters", "name")],
        )


def _check_values(kind: str, values: Mapping[str, Any]) -> list[ProblemDetail]:
    problems: list[ProblemDetail] = []
    for name in ("url", "webhookUrl"):
        value = values.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            problems.append(ProblemDetail("must be an http:// or https:// URL", name))
            continue
        try:
            parsed = httpx.URL(value)
        except httpx.InvalidURL:
            problems.append(ProblemDetail("is not a valid URL", name))
            continue
        if not parsed.host:
            problems.append(ProblemDetail("has no host", name))
    headers = values.get("headers")
    if headers is not None and not (
        isinstance(headers, Mapping) and all(isinstance(v, str) for v in headers.values())
    ):
        problems.append(ProblemDetail("must be an object of strings", "headers"))
    for name in ("secret", "signatureHeader", "host", "username", "password", "from"):
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(ProblemDetail("must be a string", name))
    if kind == "email":
        port = values.get("port")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            problems.append(ProblemDetail("must be a port number (1-65535)", "port"))
        tls = values.get("tls")
        if tls is not None and tls not in TLS_MODES:
            problems.append(ProblemDetail(f"must be one of {', '.join(TLS_MODES)}", "tls"))
        to = values.get("to")
        if isinstance(to, str):
            to = [to]
        if to is not None and (
            not isinstance(to, list)
            or not to
            or not all(isinstance(a, str) and "@" in a for a in to)
        ):
            problems.append(ProblemDetail("must be a list of email addresses", "to"))
        sender = values.get("from")
        if isinstance(sender, str) and "@" not in sender:
            problems.append(ProblemDetail("must be an email address", "from"))
    return problems
