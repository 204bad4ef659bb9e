"""The scheduler: fires schedules (flow8 schedules and workflows' Cron triggers) exactly
once per fire time, and wakes parked executions when their time comes."""

from __future__ import annotations

from runnel.scheduler.loop import Fired, Scheduler, fire_execution_id

__all__ = ["Fired", "Scheduler", "fire_execution_id"]
