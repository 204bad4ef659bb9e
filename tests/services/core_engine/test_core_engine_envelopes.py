"""``CoreEngine.open_envelope`` and who may use the engine, over a real SQLite platform."""

from __future__ import annotations

import json
import time

import pytest

from flowork_keys import Wallet
from runnel.services.core_engine import EnvelopeRejected, GatewayStoreAuthority, ListAuthority
from services.core_engine.engine_setup import Setup


async def test_the_owner_opens_an_envelope(setup: Setup) -> None:
    user, payload = await setup.engine.open_envelope(
        setup.envelope(setup.owner, {"type": "request_settings"})
    )
    assert user.address == setup.owner.lower
    assert user.user_id == setup.owner_id
    assert payload == {"type": "request_settings"}


async def test_an_already_parsed_envelope_is_accepted(setup: Setup) -> None:
    raw = json.loads(setup.envelope(setup.owner, {"type": "request_drives"}))
    user, payload = await setup.engine.open_envelope(raw)
    assert user.address == setup.owner.lower and payload["type"] == "request_drives"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("not json", "Invalid message: not JSON"),
        ("[1, 2]", "Invalid message: expected an object {auth, payload}"),
        (json.dumps({"payload": {"type": "request_drives"}}), "Missing auth"),
        (json.dumps({"auth": {"address": "0x1"}, "payload": {}}), "Missing signature"),
        (b"\xff\xfe", "Invalid message: not JSON"),
    ],
)
async def test_malformed_envelopes_are_rejected(setup: Setup, raw: object, error: str) -> None:
    with pytest.raises(EnvelopeRejected) as rejected:
        await setup.engine.open_envelope(raw)
    assert str(rejected.value).startswith(error)


async def test_a_signature_by_another_key_is_invalid(setup: Setup) -> None:
    intruder = Wallet()
    text = f"Flowork GUI-to-Engine Authentication: {intruder.stamp_ms()}"
    auth = {"address": setup.owner.address, "message": text, "signature": intruder.sign(text)}
    raw = json.dumps({"auth": auth, "payload": {"type": "request_drives"}})
    with pytest.raises(EnvelopeRejected, match=r"^Invalid signature"):
        await setup.engine.open_envelope(raw)


async def test_a_replayed_envelope_is_rejected(setup: Setup) -> None:
    raw = setup.envelope(setup.owner, {"type": "request_drives"})
    await setup.engine.open_envelope(raw)
    with pytest.raises(EnvelopeRejected, match=r"^Replayed"):
        await setup.engine.open_envelope(raw)


async def test_a_stale_envelope_is_rejected(setup: Setup) -> None:
    stale = int((time.time() - 3600) * 1000)
    raw = setup.envelope(
        setup.owner, {"type": "request_drives"}, f"Flowork GUI-to-Engine Authentication: {stale}"
    )
    with pytest.raises(EnvelopeRejected, match=r"^Stale authentication signature"):
        await setup.engine.open_envelope(raw)


async def test_another_message_format_is_rejected(setup: Setup) -> None:
    raw = setup.envelope(
        setup.owner, {"type": "request_drives"}, setup.owner.message("flowork_api_auth")
    )
    with pytest.raises(EnvelopeRejected, match=r"^Malformed signed message"):
        await setup.engine.open_envelope(raw)


async def test_a_stranger_is_not_authorized_until_shared_and_again_once_revoked(
    setup: Setup,
) -> None:
    stranger = Wallet()
    refused = f"User not authorized for engine {setup.engine.engine_id}"
    with pytest.raises(EnvelopeRejected) as rejected:
        await setup.engine.open_envelope(setup.envelope(stranger, {"type": "request_drives"}))
    assert str(rejected.value) == refused
    assert not await setup.engine.may_see(stranger.lower)

    user_id = await setup.share_with(stranger)
    user, _ = await setup.engine.open_envelope(setup.envelope(stranger, {"type": "request_drives"}))
    assert user.user_id == user_id
    assert await setup.engine.may_see(stranger.lower)

    # Revoked: the very next message is refused (the store is asked per call).
    await setup.platform.flowork.sharing.revoke(setup.owner_id, setup.engine.engine_id, user_id)
    with pytest.raises(EnvelopeRejected, match="User not authorized"):
        await setup.engine.open_envelope(setup.envelope(stranger, {"type": "request_drives"}))
    assert not await setup.engine.may_see(stranger.lower)


async def test_a_payload_must_be_an_object(setup: Setup) -> None:
    text = f"Flowork GUI-to-Engine Authentication: {setup.owner.stamp_ms()}"
    auth = {"address": setup.owner.address, "message": text, "signature": setup.owner.sign(text)}
    with pytest.raises(EnvelopeRejected, match="Missing payload"):
        await setup.engine.open_envelope(json.dumps({"auth": auth, "payload": "request_drives"}))


async def test_the_gateway_authority_names_the_owner(setup: Setup) -> None:
    assert await setup.engine.authority.owner_address() == setup.owner.lower


async def test_a_list_authority_is_replaced_whole() -> None:
    owner, shared, other = Wallet(), Wallet(), Wallet()
    authority = ListAuthority([shared.address, "not an address"], owner.address)
    assert await authority.owner_address() == owner.lower
    assert await authority.is_authorized(owner.address)
    assert await authority.is_authorized(shared.lower)
    assert not await authority.is_authorized(other.address)
    assert not await authority.is_authorized("nonsense")
    authority.replace([other.address], owner.address)
    assert authority.addresses == frozenset({owner.lower, other.lower})
    assert not await authority.is_authorized(shared.address)
    authority.replace([])
    assert await authority.owner_address() is None
    assert not await authority.is_authorized(owner.address)


async def test_the_gateway_authority_of_an_unknown_engine(setup: Setup) -> None:
    authority = GatewayStoreAuthority(setup.platform.flowork.engines, "no-such-engine")
    assert await authority.owner_address() is None
    assert not await authority.is_authorized(setup.owner.address)
    assert not await authority.is_authorized("not an address")
