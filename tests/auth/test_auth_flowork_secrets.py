"""Sealed values, the gateway secret and engine tokens."""

from __future__ import annotations

import pytest

from runnel.auth.engine_tokens import ENGINE_TOKEN_PREFIX, looks_like_engine_token, new_engine_token
from runnel.auth.sealing import SealBroken, Sealer
from runnel.auth.shared_secret import SecretCheck, check_shared_secret, engine_api_key

KEY = b"k" * 32


def test_sealing_round_trips_and_binds_its_context() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal_text("dev_engine_secret", context="row:1")
    assert sealed.startswith("v1.") and "dev_engine_secret" not in sealed
    assert sealer.open_text(sealed, context="row:1") == "dev_engine_secret"
    # A fresh nonce every time.
    assert sealer.seal_text("x", context="c") != sealer.seal_text("x", context="c")
    with pytest.raises(SealBroken):
        sealer.open_text(sealed, context="row:2")
    with pytest.raises(SealBroken):
        Sealer(b"o" * 32).open_text(sealed, context="row:1")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for broken in (tampered, "v1.!!!", "v1.AAAA", "v2." + sealed[3:], ""):
        with pytest.raises(SealBroken):
            sealer.open_text(broken, context="row:1")
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")


@pytest.mark.parametrize(
    ("configured", "presented", "expected"),
    [
        (None, "anything", SecretCheck.CLOSED),
        ("  ", "  ", SecretCheck.CLOSED),
        ("flork_sec_1", None, SecretCheck.MISSING),
        ("flork_sec_1", "", SecretCheck.MISSING),
        ("flork_sec_1", "flork_sec_2", SecretCheck.WRONG),
        ("flork_sec_1", "flork_sec_1", SecretCheck.OK),
        ("flork_sec_1", " flork_sec_1 ", SecretCheck.OK),
    ],
)
def test_the_gateway_secret(
    configured: str | None, presented: str | None, expected: SecretCheck
) -> None:
    assert check_shared_secret(configured, presented) is expected


def test_engine_tokens() -> None:
    token = new_engine_token()
    assert token.startswith(ENGINE_TOKEN_PREFIX) and len(token) == len(ENGINE_TOKEN_PREFIX) + 32
    assert looks_like_engine_token(token)
    assert new_engine_token() != token
    for bad in (None, "", "dev_engine_", token + "0", token.upper(), "eyJ.a.b"):
        assert not looks_like_engine_token(bad)


def test_each_engine_gets_its_own_key() -> None:
    one = engine_api_key("flork_sec_1", "engine-a")
    assert one == engine_api_key(" flork_sec_1 ", "engine-a")
    assert len(one) == 64 and "flork_sec_1" not in one
    assert one != engine_api_key("flork_sec_1", "engine-b")
    assert one != engine_api_key("flork_sec_2", "engine-a")
