"""Small built-in services: forwarding (pipelines, benchmarks) and a recorder for tests."""

from __future__ import annotations

import os
from typing import Any

from zocalo_nb.dispatch import StepContext
from zocalo_nb.service.service import Service


def forward(ctx: StepContext, payload: Any) -> None:
    """Send the payload on to the next step(s) unchanged: the simplest processing step."""
    ctx.send(payload)


def forward_service() -> Service:
    """Entry point: forward messages from the queues in ``ZOCALO_NB_QUEUES`` (comma-separated,
    default ``forward``)."""
    queues = tuple(q for q in os.environ.get("ZOCALO_NB_QUEUES", "forward").split(",") if q)
    return Service("forward", forward, queues=queues, description="passes payloads on")
