"""What the Core Engine tests share: a platform, its embedded engine, the owner's wallet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowork_keys import Wallet
from runnel.platform import Platform
from runnel.services.core_engine import CoreEngine, EngineUser


@dataclass
class Setup:
    platform: Platform
    engine: CoreEngine
    owner: Wallet
    owner_id: str
    root: Path

    def envelope(self, wallet: Wallet, payload: dict[str, Any], message: str | None = None) -> str:
        """A signed Core Engine envelope (fresh milliseconds unless ``message``)."""
        text = message or f"Flowork GUI-to-Engine Authentication: {wallet.stamp_ms()}"
        auth = {"address": wallet.address, "message": text, "signature": wallet.sign(text)}
        return json.dumps({"auth": auth, "payload": payload})

    async def ask(self, wallet: Wallet, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Open a fresh envelope of ``wallet`` and handle ``payload``."""
        user, opened = await self.engine.open_envelope(self.envelope(wallet, payload))
        return await self.engine.handle(user, opened)

    async def ask_one(self, wallet: Wallet, payload: dict[str, Any]) -> dict[str, Any]:
        answers = await self.ask(wallet, payload)
        assert len(answers) == 1, answers
        return answers[0]

    async def share_with(self, wallet: Wallet) -> str:
        """Share the engine with ``wallet``'s (new) user; its user id."""
        record = await self.platform.flowork.sharing.share(
            self.owner_id, self.engine.engine_id, wallet.address
        )
        user = await self.platform.flowork.identities.user_for_address(wallet.lower, create=False)
        assert user is not None and record is not None
        return user.id

    def user(self, wallet: Wallet) -> EngineUser:
        return EngineUser(wallet.lower)
