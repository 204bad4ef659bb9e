"""Flowork identities for the tests: real secp256k1 keys made by eth-account, and the
signed headers, messages and preset signatures a Flowork client sends."""

from __future__ import annotations

import json
import time
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

__all__ = ["Wallet", "preset_signature"]


class Wallet:
    """One key. ``headers()`` signs a fresh gateway message each call: its time is in
    milliseconds and never repeats, so no two requests send the same signed message."""

    def __init__(self) -> None:
        self.account = Account.create()
        self._last_ms = 0

    @property
    def address(self) -> str:
        """Checksummed (mixed case), as wallets show it."""
        return str(self.account.address)

    @property
    def lower(self) -> str:
        return self.address.lower()

    def sign(self, text: str) -> str:
        """The EIP-191 personal_sign signature of ``text``: ``0x`` + 130 hex."""
        signed = self.account.sign_message(encode_defunct(text=text))
        return "0x" + bytes(signed.signature).hex()

    def stamp_ms(self) -> int:
        now = int(time.time() * 1000)
        self._last_ms = max(now, self._last_ms + 1)
        return self._last_ms

    def message(self, prefix: str = "flowork_api_auth", *, at: float | None = None) -> str:
        """``prefix|address|time``: seconds when ``at`` is given, else fresh milliseconds."""
        stamp = int(at) if at is not None else self.stamp_ms()
        return f"{prefix}|{self.address}|{stamp}"

    def headers(self, message: str | None = None, **extra: str) -> dict[str, str]:
        """The three crypto-auth headers (and ``X-Payload-Version: 2``, as the GUI sends)."""
        text = message if message is not None else self.message()
        return {
            "X-User-Address": self.address,
            "X-Signed-Message": text,
            "X-Signature": self.sign(text),
            "X-Payload-Version": "2",
            **extra,
        }


def preset_signature(wallet: Wallet, workflow_data: Any) -> str:
    """What a client signs to save a preset (PROTOCOLS.md, "Preset signature")."""
    text = json.dumps({"workflow_data": workflow_data}, sort_keys=True, separators=(",", ":"))
    return wallet.sign(text)
