"""Dead letters: one record per dead-lettered message, from a live DLQ or upstream's files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from zocalo_nb.dispatch.envelope import EnvelopeView, peek
from zocalo_nb.dispatch.events import SUMMARY_CHARS
from zocalo_nb.transport import Message
from zocalo_nb.wire.headers import (
    ATTEMPTS,
    BROKER_MESSAGE_ID,
    DEAD_LETTERED_AT,
    DESTINATION,
    ERROR,
    ERROR_TYPE,
    MESSAGE_ID,
    ORIGINAL_DESTINATION,
    REASON,
    SERVICE,
    TIMESTAMP,
    X_DEATH,
    last_death,
)

#: The reason shown for dead letters without ours (an upstream service nacked them, or the
#: broker gave up redelivering them).
BROKER_REASON = "rejected by its consumer (nack), dead-lettered by the broker"
COLUMNS = (
    "queue",
    "destination",
    "time",
    "run",
    "step",
    "service",
    "error_type",
    "error",
    "reason",
    "attempts",
    "parameters",
    "payload",
    "message_id",
    "source",
    "headers",
    "body",
)


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message: where it was going, why it died, and the whole of it.

    ``queue`` is the DLQ it waits in (``/queue/DLQ.x``), or empty for a file; ``source`` is
    ``"broker"`` or the file's path.
    """

    queue: str
    headers: Mapping[str, str]
    body: Any
    source: str = "broker"
    is_json: bool = True
    message: Message | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_message(cls, message: Message) -> DeadLetter:
        return cls(
            message.destination,
            dict(message.headers),
            message.body,
            "broker",
            message.is_json,
            message,
        )

    @property
    def destination(self) -> str:
        """Where the message was going: ``original-destination``, else ``destination``, else
        (RabbitMQ) the queue or fanout exchange its ``x-death`` names."""
        found = self.headers.get(ORIGINAL_DESTINATION) or self.headers.get(DESTINATION)
        if found:
            return str(found)
        death = self.death
        if death.get("exchange"):
            return f"/topic/{death['exchange']}"
        return f"/queue/{death['queue']}" if death.get("queue") else ""

    @cached_property
    def death(self) -> Mapping[str, Any]:
        """RabbitMQ's newest ``x-death`` record ({} on ActiveMQ)."""
        return last_death(self.headers.get(X_DEATH))

    @property
    def message_id(self) -> str:
        """Our stable id, else the broker's message id."""
        return str(self.headers.get(MESSAGE_ID) or self.headers.get(BROKER_MESSAGE_ID) or "")

    @property
    def broker_id(self) -> str:
        return str(self.headers.get(BROKER_MESSAGE_ID) or self.message_id)

    @property
    def time(self) -> float | None:
        """When it was dead-lettered (our header), else when the broker stamped it."""
        ours = _epoch(self.headers.get(DEAD_LETTERED_AT))
        if ours is not None:
            return ours
        stamp = self.headers.get(TIMESTAMP)
        if stamp and str(stamp).isdigit():
            return _epoch(int(stamp) / 1000)
        return _epoch(self.death.get("time"))

    @cached_property
    def envelope(self) -> EnvelopeView:
        """The recipe envelope, read leniently (one reader for taps and dead letters); read
        once per letter, however many of run/step/parameters/payload are asked for."""
        return peek(self.body)

    @property
    def recipe_message(self) -> Mapping[str, Any] | None:
        return self.body if self.envelope.is_recipe else None

    @property
    def run(self) -> str | None:
        return self.envelope.run

    @property
    def step(self) -> int | None:
        return self.envelope.step

    @property
    def parameters(self) -> dict[str, Any]:
        """The failed step's parameters (of a recipe message), for filtering and fixing."""
        return dict(self.envelope.parameters)

    @property
    def payload(self) -> Any:
        return self.envelope.payload

    def row(self) -> dict[str, Any]:
        h = self.headers
        try:
            summary = json.dumps(self.payload, default=str) if self.is_json else str(self.body)
        except (TypeError, ValueError, RecursionError):
            summary = "<cannot be shown>"
        return {
            "queue": self.queue,
            "destination": self.destination,
            "time": self.time,
            "run": self.run,
            "step": self.step,
            "service": h.get(SERVICE),
            "error_type": h.get(ERROR_TYPE),
            "error": h.get(ERROR) or h.get("dlqDeliveryFailureCause"),
            "reason": h.get(REASON) or _death_reason(self.death) or BROKER_REASON,
            "attempts": _count(h.get(ATTEMPTS)),
            "parameters": self.parameters,
            "payload": summary[:SUMMARY_CHARS],
            "message_id": self.message_id,
            "source": self.source,
            "headers": dict(h),
            "body": self.body,
        }


def letters_frame(letters: Iterable[DeadLetter]) -> pd.DataFrame:
    """One row per dead letter, oldest first, typed like the other frames."""
    frame = pd.DataFrame([letter.row() for letter in letters], columns=list(COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
    frame["step"] = frame["step"].astype("Int64")
    frame["attempts"] = frame["attempts"].astype("Int64")
    for column in ("queue", "destination", "service", "error_type"):
        frame[column] = frame[column].astype("category")
    return frame.sort_values("time", kind="stable", ignore_index=True)


#: Times outside these (epoch seconds) are not believed: 1970 to the year 5138.
_EARLIEST, _LATEST = 0.0, 1e11


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a header, or None for anything that is not a plausible time."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if _EARLIEST < number < _LATEST else None


def _count(value: Any) -> int | None:
    """A non-negative count from a header, or None ("three", "-4", "1e300")."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**31 else None


def _death_reason(death: Mapping[str, Any]) -> str | None:
    """RabbitMQ's reason for a dead-lettering, in words."""
    reason = death.get("reason")
    if not reason:
        return None
    return {
        "rejected": BROKER_REASON,
        "delivery_limit": "delivered as often as its queue's delivery-limit allows (RabbitMQ)",
        "expired": "expired before it was consumed",
        "maxlen": "dropped from a full queue",
    }.get(str(reason), str(reason))
