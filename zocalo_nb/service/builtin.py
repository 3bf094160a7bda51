"""Small built-in services: forwarding (pipelines, benchmarks) and a recorder for tests."""

from __future__ import annotations

from typing import Any

from zocalo_nb.dispatch import StepContext


def forward(ctx: StepContext, payload: Any) -> None:
    """Send the payload on to the next step(s) unchanged: the simplest processing step."""
    ctx.send(payload)
