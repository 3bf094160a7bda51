"""Lifecycle events: what happened to each step of each run, on one topic.

Each message on :data:`EVENTS_TOPIC` carries a JSON *list* of events: everything one
transaction committed (a batch of steps) travels as one broker frame, which keeps the
broker's work per step low. :func:`unpack` turns a message body into its events (it also
accepts a single event object). Schema of one event:

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
``payload``    terminal states: the step's input payload (so the step can be rerun), or
               ``{"zocalo-nb-truncated": size}`` past :data:`PAYLOAD_LIMIT` bytes
``path``       terminal states: the step's ``recipe-path``
``sent_to``    succeeded: the step ids its outputs went to (the run's expected steps)
=============  ==========================================================================

A run starts with one ``submitted`` event (``step`` null) sent in the transaction that starts
it, by :func:`~zocalo_nb.dispatch.submit`, the dispatcher or :meth:`MessageContext.start`:
``run``, ``time``, ``state``, ``recipe`` (the full recipe, parameters applied),
``parameters`` (the submission's parameters), ``environment``, ``source`` and ``host``.
Together with each step's ``payload`` and ``path``, it rebuilds any step's input message.

Terminal events travel in the same transaction as the step's outputs. ``received`` is sent
for handlers still running after the runner's ``announce_after`` seconds (0.5 by default; 0
sends it for every message at once), so monitors can show long steps as running without
costing the broker a frame for every fast one.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from typing import Any

from zocalo_nb.wire.events import EVENTS_TOPIC, EventState

#: The states an event can report (the wire's enum; its members are their text).
State = EventState
__all__ = [
    "EVENTS_TOPIC",
    "PAYLOAD_LIMIT",
    "SUMMARY_CHARS",
    "State",
    "event",
    "input_payload",
    "submitted",
    "unpack",
]
#: Characters of a payload shown in the summary columns of event and dead-letter frames.
SUMMARY_CHARS = 120
#: Input payloads larger than this (bytes of JSON) are not copied into events.
PAYLOAD_LIMIT = 65536


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


def unpack(body: Any) -> list[dict[str, Any]]:
    """The events in one message body from the events topic (a list, or one object)."""
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    return []


def submitted(
    run: str,
    recipe: Mapping[str, Any],
    *,
    environment: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
    source: str = "submit",
    host: str = "",
) -> dict[str, Any]:
    """The event that opens a run (see the module docstring)."""
    return {
        "run": run,
        "step": None,
        "state": EventState.SUBMITTED,
        "time": time.time(),
        "recipe": dict(recipe),
        "parameters": dict(parameters or {}),
        "environment": dict(environment),
        "source": source,
        "host": host or socket.getfqdn(),
    }


#: How much longer than the JSON text it was decoded from a value's encoding can be: a
#: character escaped as a surrogate pair (``\\ud83d\\ude00``, 12 for 1), ``,`` and ``:`` given a
#: space, floats such as ``1e15`` written out (``1000000000000000.0``, 4.5 times).
GROWTH = 12


def input_payload(payload: Any, *, decoded_from: int | None = None) -> Any:
    """``payload`` as recorded in an event: itself, or a marker when it is too large.
    ``decoded_from``: the length of the JSON text the payload was decoded from (a received
    message's); a short text cannot hold a payload past the limit, so it is not encoded to
    be measured."""
    if payload is None or type(payload) in (bool, int, float):
        return payload
    if decoded_from is not None and GROWTH * decoded_from <= PAYLOAD_LIMIT:
        return payload
    if type(payload) is str and 6 * len(payload) + 2 <= PAYLOAD_LIMIT:
        return payload  # even escaped (at most 6 characters each) it fits: no need to encode
    try:
        size = len(json.dumps(payload, default=str))
    except (TypeError, ValueError):
        return {"zocalo-nb-truncated": -1}
    return payload if size <= PAYLOAD_LIMIT else {"zocalo-nb-truncated": size}
