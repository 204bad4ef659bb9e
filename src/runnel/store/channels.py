"""Notification channels: a named destination (webhook, Slack, email) with its settings.

The services split a channel's settings into ``config`` (shown, masked where needed) and
``secret`` (sealed with the instance key before it reaches the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from runnel.store._repo import RepositoryMixin
from runnel.store.codec import dumps, loads

__all__ = ["ChannelRecord", "ChannelsMixin"]


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    id: str
    name: str
    type: str
    config: dict[str, Any]
    #: Sealed JSON of the secret settings (runnel.auth.secretbox).
    secret: str
    created_at: float
    updated_at: float
    owner: str | None = None
    group_id: str | None = None


_COLUMNS: Final = "id, name, type, owner, group_id, config, secret, created_at, updated_at"
_INSERT: Final = f"""
INSERT INTO channels ({_COLUMNS})
VALUES (:id, :name, :type, :owner, :group_id, :config, :secret, :created_at, :updated_at)
"""
_UPDATE: Final = """
UPDATE channels SET name = :name, type = :type, group_id = :group_id, config = :config,
    secret = :secret, updated_at = :updated_at
WHERE id = :id
"""
_SELECT: Final = f"SELECT {_COLUMNS} FROM channels WHERE id = :id"
_DELETE: Final = "DELETE FROM channels WHERE id = :id"
_VISIBLE: Final = """WHERE (owner = :viewer
    OR group_id IN (SELECT group_id FROM group_members WHERE user_id = :viewer))"""
_LIST: Final = f"""
SELECT {_COLUMNS} FROM channels {{where}}
ORDER BY created_at, id LIMIT :limit OFFSET :offset
"""
_COUNT: Final = "SELECT COUNT(*) FROM channels {where}"


def _record(row: Any) -> ChannelRecord:
    return ChannelRecord(
        id=row[0],
        name=row[1],
        type=row[2],
        owner=row[3],
        group_id=row[4],
        config=loads(row[5]),
        secret=row[6],
        created_at=float(row[7]),
        updated_at=float(row[8]),
    )


def _row(channel: ChannelRecord) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "type": channel.type,
        "owner": channel.owner,
        "group_id": channel.group_id,
        "config": dumps(channel.config),
        "secret": channel.secret,
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }


class ChannelsMixin(RepositoryMixin):
    """Channels, as methods of ``SqlStore``."""

    async def create_channel(self, channel: ChannelRecord) -> None:
        await self._change(_INSERT, _row(channel))

    async def update_channel(self, channel: ChannelRecord) -> bool:
        return await self._change(_UPDATE, _row(channel)) == 1

    async def get_channel(self, channel_id: str) -> ChannelRecord | None:
        row = await self._fetch_one(_SELECT, {"id": channel_id})
        return None if row is None else _record(row)

    async def delete_channel(self, channel_id: str) -> bool:
        return await self._change(_DELETE, {"id": channel_id}) == 1

    async def list_channels(
        self, viewer: str | None, limit: int, offset: int
    ) -> tuple[list[ChannelRecord], int]:
        """Channels ``viewer`` owns or shares a group with (None: all), oldest first."""
        where = "" if viewer is None else _VISIBLE
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if viewer is not None:
            params["viewer"] = viewer
        rows = await self._fetch_all(_LIST.format(where=where), params)
        total = await self._scalar(_COUNT.format(where=where), params)
        return [_record(row) for row in rows], int(total or 0)
