"""The AMQP transport's helpers: actions handed to its I/O thread, pika's errors as ours, and
conversions between pika's deliveries and headers and ours."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from zocalo_nb.errors import MissingExtra
from zocalo_nb.transport.base import Subscription, TransportError
from zocalo_nb.transport.message import Message, decode
from zocalo_nb.wire.headers import (
    BROKER_MESSAGE_ID,
    DESTINATION,
    ORIGINAL_DESTINATION,
    REDELIVERED,
    TIMESTAMP,
    X_DEATH,
    last_death,
)

try:
    import pika.exceptions
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("rabbitmq", error.name) from error

T = TypeVar("T")


class Call(Generic[T]):
    """An action handed to the I/O thread, and its outcome."""

    def __init__(self, action: Callable[[], T]) -> None:
        self.action = action
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = translated(self.action)
        except BaseException as err:
            self.error = err
        self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()

    def result(self, timeout: float) -> T:
        if not self.done.wait(timeout):
            raise TransportError(
                f"RabbitMQ did not answer within {timeout:g} s", hint="check the broker"
            )
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def translated(action: Callable[[], T]) -> T:
    try:
        return action()
    except pika.exceptions.AMQPError as err:
        raise TransportError(f"RabbitMQ: {err!r}", hint="see the broker's log") from err


def header_text(value: Any) -> str:
    """A header value as text (AMQP tables carry booleans, numbers, lists and times)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def delivered(
    sub: Subscription, method: Any, properties: Any, body: bytes, generation: int
) -> Message:
    """Our Message for a pika delivery to ``sub`` (or a basic_get): headers as text, the
    broker's facts as our header names, ``x-death`` read as ``original-destination``,
    ``x-delivery-count`` as the delivery count; ``ack_id`` is ``generation:tag``."""
    raw = properties.headers or {}
    headers = {str(k): header_text(v) for k, v in raw.items()}
    kind = "topic" if sub.kind == "topic" else "queue"
    headers[DESTINATION] = f"/{kind}/{sub.destination}"
    headers[BROKER_MESSAGE_ID] = properties.message_id or f"{generation}-{method.delivery_tag}"
    headers[REDELIVERED] = "true" if method.redelivered else "false"
    if properties.timestamp:
        headers[TIMESTAMP] = str(int(properties.timestamp) * 1000)
    death = last_death(raw.get(X_DEATH))
    if death.get("queue") and ORIGINAL_DESTINATION not in headers:
        headers[ORIGINAL_DESTINATION] = f"/queue/{death['queue']}"
    count = raw.get("x-delivery-count")
    if isinstance(count, int):
        delivery_count: int | None = count + 1
    else:
        delivery_count = None if method.redelivered else 1
    text = body.decode("utf-8", "replace")
    value, is_json = decode(text)
    return Message(
        headers[DESTINATION],
        value,
        headers,
        is_json,
        bool(method.redelivered),
        delivery_count,
        f"{generation}:{method.delivery_tag}",
        sub.id,
        text,
    )


def death_record(queue: str) -> list[dict[str, Any]]:
    """The ``x-death`` RabbitMQ writes when it dead-letters a message rejected from
    ``queue`` (for dead letters we move ourselves; upstream's DLQ tools read it)."""
    return [
        {
            "count": 1,
            "reason": "rejected",
            "queue": queue,
            "time": datetime.datetime.now(datetime.UTC),
            "exchange": "",
            "routing-keys": [queue],
        }
    ]
