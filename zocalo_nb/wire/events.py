"""Lifecycle event states, as they travel on the events topic (``zocalo-nb.events``)."""

from __future__ import annotations

from enum import StrEnum

#: Where lifecycle events are broadcast (a JSON list of events per message).
EVENTS_TOPIC = "zocalo-nb.events"


class EventState(StrEnum):
    """What happened to a step's message. A ``str``: events hold and compare the text."""

    SUBMITTED = "submitted"
    RECEIVED = "received"
    RETRYING = "retrying"
    FAILED = "failed"
    UNWIRED_SEND = "unwired-send"
    SUCCEEDED = "succeeded"
    DEAD_LETTERED = "dead-lettered"
    #: A cluster job of the step changed state (``job_state``: queued, running, completed,
    #: failed, timeout, cancelled, node-failure, out-of-memory).
    JOB = "job"


#: States whose events carry the step's input (payload and path).
TERMINAL = frozenset(
    {EventState.SUCCEEDED, EventState.FAILED, EventState.RETRYING, EventState.DEAD_LETTERED}
)
