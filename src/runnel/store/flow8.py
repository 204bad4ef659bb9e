"""The flow8 repositories, as one mixin for ``SqlStore``: sessions, groups, KV entries,
channels, schedules, and the flow and play listings."""

from __future__ import annotations

from runnel.store.channels import ChannelsMixin
from runnel.store.groups import GroupsMixin
from runnel.store.kv import KvMixin
from runnel.store.plays import PlaysMixin
from runnel.store.schedules import SchedulesMixin
from runnel.store.sessions import SessionsMixin

__all__ = ["Flow8Mixin"]


class Flow8Mixin(SessionsMixin, GroupsMixin, KvMixin, ChannelsMixin, SchedulesMixin, PlaysMixin):
    """Every flow8 repository method."""
