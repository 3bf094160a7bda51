"""The AMQP transport's helpers: actions handed to its I/O thread, pika's errors as ours, and
AMQP header values as text."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from zocalo_nb.errors import MissingExtra
from zocalo_nb.transport.base import TransportError

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
