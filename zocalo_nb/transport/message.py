"""Messages as our transports hand them to callbacks, and the JSON codec used on the wire."""

from __future__ import annotations

import itertools
import json
import json.decoder
import json.encoder
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from zocalo_nb.wire.headers import BROKER_HEADERS, BROKER_MESSAGE_ID, MESSAGE_ID

__all__ = [
    "BROKER_HEADERS",
    "MESSAGE_ID",
    "Message",
    "RawBody",
    "decode",
    "dumps",
    "encode",
    "loads",
    "new_message_id",
]


class Message(NamedTuple):
    """A message delivered to a subscription (immutable).

    ``body`` is the decoded JSON value, or the raw text when the body is not JSON (then
    ``is_json`` is False). ``delivery_count`` is known on ``memory://`` and None on brokers
    that do not report it (ActiveMQ over STOMP); ``redelivered`` is known on both.
    ``ack_id`` and ``subscription`` are opaque handles for ack/nack on the transport that
    delivered the message.
    """

    destination: str
    body: Any
    headers: Mapping[str, str]
    is_json: bool = True
    redelivered: bool = False
    delivery_count: int | None = None
    ack_id: str = ""
    subscription: str = ""
    #: The body exactly as it arrived (re-sent as it is by retries, quarantine and the DLQ,
    #: so a body that decodes but cannot be encoded again still travels).
    text: str = ""

    @property
    def message_id(self) -> str:
        """Our stable id (header ``zocalo-nb-id``), falling back to the broker's message-id."""
        return self.headers.get(MESSAGE_ID) or self.headers.get(BROKER_MESSAGE_ID, "")

    def raw_body(self) -> Any:
        """The body to send on a copy of this message: its exact text when known."""
        if self.text:
            return RawBody(self.text)
        return self.body if self.is_json else RawBody(self.body)

    def user_headers(self) -> dict[str, str]:
        """Headers worth keeping when this message is sent on again (broker headers removed)."""
        return {k: v for k, v in self.headers.items() if k not in BROKER_HEADERS}


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def _fresh_ids() -> None:
    """In a forked child: its own prefix, so parent and child never repeat an id."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = os.urandom(8).hex(), itertools.count()


os.register_at_fork(after_in_child=_fresh_ids)


def new_message_id() -> str:
    """A fresh stable message id: 64 random bits drawn once per process, then a counter (32 hex
    digits, as unique as a uuid4 and without a system call per message)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


#: json.dumps' own C encoder with its default options, made once: json.dumps makes one per
#: call (about a microsecond, more than encoding a small dict takes). Without the circular
#: check's shared table (``markers``), so one encoder serves every thread: a cycle raises
#: RecursionError instead of ValueError, which every caller handles the same way.
_ENCODER = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)
#: json.loads' own C scanner (stateless between calls, as json.loads shares it too).
_SCAN = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]


def dumps(value: Any) -> str:
    """``json.dumps(value)``, the same text, quicker (see ``_ENCODER``). Raises what json.dumps
    raises (TypeError for what JSON cannot hold), RecursionError for a cycle."""
    if _ENCODER is None:  # a Python without the _json accelerator
        return json.dumps(value)
    return "".join(_ENCODER(value, 0))


def loads(text: str) -> Any:
    """``json.loads(text)`` for a str, quicker: the scanner is called directly, and anything
    it does not take as a whole (leading or trailing whitespace, an error) goes through
    json.loads, which decides and raises as it always does."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


class SelfEncoding(dict):  # type: ignore[type-arg]
    """A dict body that knows a quicker way to its JSON text than encoding all of it (a
    recipe message reuses its recipe's text). ``json_text()`` must equal ``json.dumps``."""

    __slots__ = ()

    def json_text(self) -> str:
        return dumps(self)


def encode(body: Any) -> str:
    """The wire form of a body: JSON, as upstream workflows sends it."""
    if isinstance(body, SelfEncoding):
        return body.json_text()
    return dumps(body)


def decode(text: str | bytes) -> tuple[Any, bool]:
    """``(value, True)`` for a JSON body, ``(text, False)`` for anything else; never raises."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        return loads(text), True
    except (ValueError, RecursionError):
        return text, False


class RawBody(str):
    """A body sent as this exact text, not JSON-encoded (for tests and reinjection)."""

    __slots__ = ()
