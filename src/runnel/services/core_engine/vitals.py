"""The engine's CPU and memory load, read from ``/proc`` (no psutil).

CPU: the machine's busy share between two samples, from ``/proc/stat`` (what the original
engine reports with ``psutil.cpu_percent()``). Memory: ``1 - MemAvailable / MemTotal`` from
``/proc/meminfo``. Off Linux, CPU is this process's CPU time over wall time and cores
(``os.times``), memory 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Vitals", "VitalsSampler"]

_PROC_STAT: Final = Path("/proc/stat")
_PROC_MEMINFO: Final = Path("/proc/meminfo")


@dataclass(frozen=True, slots=True)
class Vitals:
    cpu_percent: float
    memory_percent: float


def _clamp(value: float) -> float:
    return round(min(100.0, max(0.0, value)), 1)


def _read_cpu_times(path: Path) -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs; None when unreadable."""
    try:
        with path.open() as stat:
            first = stat.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    try:
        values = [int(v) for v in first[1:]]
    except ValueError:
        return None
    # user nice system idle iowait irq softirq steal (guest times are inside user/nice).
    fields = values[:8]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields)
    return total - idle, total


def _read_memory_percent(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    info: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            info[name] = int(parts[0])
    total = info.get("MemTotal", 0)
    if total <= 0:
        return None
    available = info.get("MemAvailable")
    if available is None:
        available = info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0)
    return 100.0 * (total - available) / total


class VitalsSampler:
    """``sample()`` gives the load since the previous sample (the first one: since it
    was made)."""

    def __init__(
        self,
        *,
        proc_stat: Path = _PROC_STAT,
        proc_meminfo: Path = _PROC_MEMINFO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stat = proc_stat
        self._meminfo = proc_meminfo
        self._clock = clock
        self._last_system = _read_cpu_times(self._stat)
        self._last_process = (self._process_seconds(), clock())

    def sample(self) -> Vitals:
        return Vitals(self._cpu(), _clamp(_read_memory_percent(self._meminfo) or 0.0))

    def _cpu(self) -> float:
        now = _read_cpu_times(self._stat)
        before, self._last_system = self._last_system, now
        if now is not None and before is not None:
            busy, total = now[0] - before[0], now[1] - before[1]
            return _clamp(100.0 * busy / total) if total > 0 else 0.0
        # No /proc: this process's share of the machine.
        spent, at = self._process_seconds(), self._clock()
        (spent_before, at_before), self._last_process = self._last_process, (spent, at)
        elapsed = (at - at_before) * (os.cpu_count() or 1)
        return _clamp(100.0 * (spent - spent_before) / elapsed) if elapsed > 0 else 0.0

    @staticmethod
    def _process_seconds() -> float:
        times = os.times()
        return times.user + times.system
