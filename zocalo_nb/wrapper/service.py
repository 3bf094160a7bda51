"""Wrappers as a service: each message on the queue runs one job through the lifecycle.

Long jobs hold no broker transaction while they run: the job's message stays delivered but
unacknowledged with this runner (the broker's lease lasts as long as the connection, kept
alive by heart-beats); ``starting`` and ``updates`` go out at once; the outcome channels and
the ack commit together in one short transaction when the job ends. If the runner dies, the
broker hands the message to another runner at once and the job (killed with its runner, see
:mod:`zocalo_nb.wrapper.command`) runs again from the start, once: through the quarantine
queue, where a job that kills its runner again is counted as a crash. Nothing is lost; no
outcome is sent twice. README.md, "Long jobs", lists the limits.
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
