"""Lifecycle events: what happened to each step of each run, on one topic.

Schema (a JSON object per event, broadcast on :data:`EVENTS_TOPIC`):

=============  ==========================================================================
``run``        run id (``environment.ID``), or null for non-recipe messages
``step``       step id (``recipe-pointer``), or null
``service``    service name
``host``       host id of the service process (reversed FQDN + pid, as upstream)
``state``      received | succeeded | failed | retrying | dead-lettered | unwired-send
``time``       epoch seconds when the event was made
``started``    epoch seconds when handling started (terminal states)
``duration``   seconds the handler took (terminal states)
``attempt``    attempt number, from 1
``message_id`` our stable message id
``queue``      destination the message came from
``error``      ``{"type", "message"}`` for failed/retrying/dead-lettered, else absent
``channel``    for unwired-send: the channel that leads nowhere
``reason``     for dead-lettered: why (an error, a bad message, too many crashes)
=============  ==========================================================================

Terminal events travel in the same transaction as the step's outputs. ``received`` is sent
for handlers still running after the runner's ``announce_after`` seconds (0.5 by default; 0
sends it for every message at once), so monitors can show long steps as running without
costing the broker a frame for every fast one.
"""

from __future__ import annotations

import time
from typing import Any, Literal

EVENTS_TOPIC = "zocalo-nb.events"
State = Literal["received", "succeeded", "failed", "retrying", "dead-lettered", "unwired-send"]


def event(
    state: State,
    *,
    service: str,
    host: str,
    run: str | None,
    step: int | None,
    attempt: int,
    message_id: str,
    queue: str,
    **extra: Any,
) -> dict[str, Any]:
    """One lifecycle event (see the module docstring for the fields)."""
    return {
        "run": run,
        "step": step,
        "service": service,
        "host": host,
        "state": state,
        "time": time.time(),
        "attempt": attempt,
        "message_id": message_id,
        "queue": queue,
        **extra,
    }
