"""Cron expressions in IANA time zones, and their fire times across DST changes.

A cron expression names *wall-clock* times (croniter finds them on naive local times); this
module turns each into the instant(s) it means in the zone:

- an ordinary local time is one instant;
- a local time that does not exist (clocks jump forward: 02:30 on the spring change in
  Europe/Berlin) fires at the same distance after the jump (03:30 local), so no fire is
  missed; when that instant is also a fire time of its own, it fires once;
- a local time that exists twice (clocks go back) fires once, at its first occurrence,
  unless the hour field is ``*`` (an hourly or finer schedule), which fires in both hours,
  as time really passes twice.

Instants are unix seconds (floats); fire times are compared and stored as such, so a fire
time is the same value whichever process computes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from runnel.services.errors import InvalidInput, ProblemDetail

__all__ = ["CronSchedule", "parse_cron"]

#: Local-time slack when searching: a DST shift moves an instant by at most this much.
_SLACK: Final = timedelta(hours=3)
#: Candidate local times examined for one next fire before giving up.
_MAX_CANDIDATES: Final = 10_000
_FIELDS_5: Final = "minute hour day-of-month month day-of-week"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A checked cron expression in a time zone. Make with ``parse_cron``."""

    expression: str
    timezone: str
    #: Six fields, seconds first (Flow Engine ``Cron`` triggers); five otherwise.
    with_seconds: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _repeats_in_fold(self) -> bool:
        fields = self.expression.split()
        hour_index = 2 if self.with_seconds else 1
        return len(fields) > hour_index and fields[hour_index] == "*"

    def _candidates(self, start: datetime) -> Iterator[datetime]:
        iterator = croniter(
            self.expression, start, ret_type=datetime, second_at_beginning=self.with_seconds
        )
        for _ in range(_MAX_CANDIDATES):
            yield iterator.get_next(datetime)

    def _instants(self, local: datetime, zone: ZoneInfo) -> list[float]:
        first = local.replace(tzinfo=zone, fold=0).timestamp()
        second = local.replace(tzinfo=zone, fold=1).timestamp()
        if first == second:
            return [first]
        if datetime.fromtimestamp(first, zone).replace(tzinfo=None) == local:
            # Exists twice (fold 0 is the earlier instant).
            return [first, second] if self._repeats_in_fold() else [first]
        # Does not exist: fold 0 reads it with the offset from before the jump, which lands
        # as far after the jump as the time was after its start.
        return [first]

    def next_fire(self, after: float) -> float | None:
        """The first fire instant strictly after ``after``; None if there is none."""
        zone = self.zone
        start = datetime.fromtimestamp(after, zone).replace(tzinfo=None) - _SLACK
        best: float | None = None
        bound: datetime | None = None
        try:
            for local in self._candidates(start):
                if bound is not None and local > bound:
                    break
                for instant in self._instants(local, zone):
                    if instant > after and (best is None or instant < best):
                        best = instant
                        bound = datetime.fromtimestamp(best, zone).replace(tzinfo=None) + _SLACK
        except (ValueError, KeyError, OverflowError):  # croniter found no further date
            return best
        return best

    def fires_between(self, after: float, until: float, limit: int = 1000) -> list[float]:
        """Fire instants in ``(after, until]``, oldest first, at most ``limit``."""
        found: list[float] = []
        cursor = after
        while len(found) < limit:
            instant = self.next_fire(cursor)
            if instant is None or instant > until:
                break
            found.append(instant)
            cursor = instant
        return found


def parse_cron(
    expression: str, timezone: str = "UTC", *, allow_seconds: bool = False, where: str = "cron"
) -> CronSchedule:
    """A checked ``CronSchedule``; ``InvalidInput`` saying what is wrong otherwise.

    flow8 schedules take five fields; ``allow_seconds`` also takes six (seconds first) and
    seven (seconds first, a year of ``*``), as Flow Engine ``Cron`` triggers write them.
    ``?`` (any, in day fields) reads as ``*``.
    """
    problems: list[ProblemDetail] = []
    text = " ".join(str(expression or "").split()).replace("?", "*")
    fields = text.split(" ") if text else []
    with_seconds = False
    if not text:
        problems.append(ProblemDetail("must not be empty", where))
    elif text.startswith("@"):
        pass  # @daily, @hourly, ...: croniter checks them below
    elif len(fields) == 5:
        pass
    elif allow_seconds and len(fields) in (6, 7):
        if len(fields) == 7:
            if fields[6] != "*":
                problems.append(ProblemDetail("a year other than '*' is not supported", where))
            fields = fields[:6]
            text = " ".join(fields)
        with_seconds = True
    else:
        expected = "5 fields" + (" (or 6-7 with seconds first)" if allow_seconds else "")
        problems.append(
            ProblemDetail(
                f"expected {expected}: {_FIELDS_5}; got {len(fields)} in {expression!r}", where
            )
        )
    zone_name = str(timezone or "UTC").strip() or "UTC"
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            ProblemDetail(
                f"unknown time zone {zone_name!r}; use an IANA name such as"
                " 'Europe/Berlin', 'America/New_York' or 'UTC'",
                "timezone",
            )
        )
    if not problems:
        try:
            croniter(text, second_at_beginning=with_seconds)
        except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
            problems.append(ProblemDetail(f"invalid cron expression {text!r}: {exc}", where))
    if problems:
        raise InvalidInput("; ".join(str(p) for p in problems), problems)
    schedule = CronSchedule(text, zone_name, with_seconds)
    if schedule.next_fire(_now_bound()) is None:
        raise InvalidInput(
            f"cron expression {text!r} never fires",
            [ProblemDetail("never fires (an impossible date?)", where)],
        )
    return schedule


def _now_bound() -> float:
    # A fixed point well inside the supported range: whether an expression can ever fire
    # does not depend on today's date.
    return 1_700_000_000.0
