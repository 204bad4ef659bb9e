"""Pause, resume and cancel for one running execution."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = ["ControlSignal", "ExecutionControl"]


class ControlSignal(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


class ExecutionControl:
    """Signals from outside to one execution; the executor listens and acts at once.

    Call it from the event loop the execution runs on.
    """

    def __init__(self) -> None:
        self._paused = False
        self._cancelled = False
        self.cancel_reason: str | None = None
        self._listeners: list[Callable[[ControlSignal], None]] = []

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def pause(self) -> None:
        """No new node starts until ``resume``; running nodes finish."""
        if not self._paused and not self._cancelled:
            self._paused = True
            self._notify(ControlSignal.PAUSE)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._notify(ControlSignal.RESUME)

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the running nodes and end the execution as ``cancelled``."""
        if not self._cancelled:
            self._cancelled = True
            self._paused = False
            self.cancel_reason = reason
            self._notify(ControlSignal.CANCEL)

    def listen(self, listener: Callable[[ControlSignal], None]) -> Callable[[], None]:
        """Call ``listener`` on every signal; returns a function that stops listening."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, signal: ControlSignal) -> None:
        for listener in list(self._listeners):
            listener(signal)
