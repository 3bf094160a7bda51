"""Wrappers as a service: each message on the queue runs one job through the lifecycle.

The channel messages are committed together with the incoming message (all or nothing), so
a job's ``starting``/``updates`` are delivered with its result; for jobs that run for minutes,
see the issue on long jobs.
"""

from __future__ import annotations

from typing import Any

from zocalo_nb.dispatch import StepContext
from zocalo_nb.service import Service
from zocalo_nb.wrapper.lifecycle import run_job
from zocalo_nb.wrapper.registry import find_wrapper


def wrapper_service(name: str, queues: tuple[str, ...] = ("jobs",)) -> Service:
    """A Service running wrapper ``name`` for every recipe message on ``queues``."""
    wrapper = find_wrapper(name)

    def handle(ctx: StepContext, payload: Any) -> None:
        run_job(wrapper, ctx)

    return Service(
        f"wrap-{name}",
        handle,
        queues=queues,
        max_attempts=1,
        batch=1,
        description=f"runs {name} jobs",
    )


def command_service() -> Service:
    """Entry point: command-line jobs from the queues in ``ZOCALO_NB_QUEUES`` (default jobs)."""
    import os

    queues = tuple(q for q in os.environ.get("ZOCALO_NB_QUEUES", "jobs").split(",") if q)
    return wrapper_service("command", queues)
