"""The frames of an AMQP 0-9-1 ``basic.publish``, encoded here rather than by pika, and a
transaction's frames written to pika's connection as one piece.

Why: measured on the two-service pipeline (benchmarks/bench_pipeline.py), pika builds a
publish from a Method, a Header and a Body frame object, each marshalled through several
Python calls and written to the socket with a ``send`` of its own; the services spent much of
their CPU there. The bytes are the same (tests compare them with pika's for every property we
set); a headers table of text and booleans (ours) is encoded here too, any other by pika's own
``encode_table``.

What of pika is used beyond its public API is named here only: the connection object behind
the blocking wrapper (``_impl``), its ``_adapter_emit_data`` (what pika's own frames go
through), ``bytes_sent`` (its heartbeat checker reads it), ``_body_max_length``, and the
transport's ``_tx_buffers`` (joined before a commit so that a transaction leaves in one send).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from zocalo_nb.errors import MissingExtra
from zocalo_nb.transport.base import TransportError

try:
    import pika.exceptions
    from pika import data as amqp_data
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("rabbitmq", error.name) from error

_FRAME_END = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_PUBLISH = struct.pack(">IH", 0x003C0028, 0)  # basic.publish (60, 40), ticket 0
_BASIC_CLASS = 60

# basic properties' flag bits, in their wire order
_HEADERS, _DELIVERY_MODE, _EXPIRATION, _MESSAGE_ID, _TIMESTAMP = (
    1 << 13,
    1 << 12,
    1 << 8,
    1 << 7,
    1 << 6,
)


def _short(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise TransportError(
            f"{text[:40]!r}... is {len(raw)} bytes: AMQP short strings hold 255",
            hint="use a shorter queue, exchange or message id",
        )
    return bytes((len(raw),)) + raw


def _text_table(headers: Mapping[str, Any]) -> bytes | None:
    """A field table of text and boolean values (what our messages carry) encoded as pika's
    ``encode_table`` would; None for anything else, which pika then encodes."""
    parts = []
    for key, value in headers.items():
        if type(key) is not str:
            return None
        name = key.encode()
        if len(name) > 255:
            return None  # pika raises its own error for this
        if type(value) is str:
            raw = value.encode()
            parts.append(bytes((len(name),)) + name + b"S" + len(raw).to_bytes(4, "big") + raw)
        elif type(value) is bool:
            parts.append(bytes((len(name),)) + name + (b"t\x01" if value else b"t\x00"))
        else:
            return None
    joined = b"".join(parts)
    return len(joined).to_bytes(4, "big") + joined


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + _FRAME_END


def publish_frames(
    channel: int,
    max_body: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    body: bytes,
    *,
    headers: Mapping[str, Any] | None = None,
    delivery_mode: int | None = None,
    expiration: str | None = None,
    message_id: str | None = None,
    timestamp: int | None = None,
) -> bytes:
    """The frames of one ``basic.publish`` on ``channel``: method, content header and body
    (split into frames of at most ``max_body`` bytes), as pika would write them."""
    method = _PUBLISH + _short(exchange) + _short(routing_key) + (b"\x01" if mandatory else b"\x00")
    flags = 0
    properties: list[bytes] = []
    if headers is not None:
        flags |= _HEADERS
        table = _text_table(headers)
        if table is None:
            amqp_data.encode_table(properties, dict(headers))
        else:
            properties.append(table)
    if delivery_mode is not None:
        flags |= _DELIVERY_MODE
        properties.append(bytes((delivery_mode,)))
    if expiration is not None:
        flags |= _EXPIRATION
        properties.append(_short(expiration))
    if message_id is not None:
        flags |= _MESSAGE_ID
        properties.append(_short(message_id))
    if timestamp is not None:
        flags |= _TIMESTAMP
        properties.append(struct.pack(">Q", timestamp))
    header = struct.pack(">HHQH", _BASIC_CLASS, 0, len(body), flags) + b"".join(properties)
    pieces = [_frame(_METHOD, channel, method), _frame(_HEADER, channel, header)]
    for start in range(0, len(body), max_body):
        pieces.append(_frame(_BODY, channel, body[start : start + max_body]))
    return b"".join(pieces)


class FrameWriter:
    """Writes frames to the pika connection behind a blocking one (on its I/O thread)."""

    def __init__(self, blocking_connection: Any, blocking_channel: Any) -> None:
        self._connection = blocking_connection._impl
        self._channel = blocking_channel._impl
        self.max_body: int = self._connection._body_max_length

    @property
    def channel_number(self) -> int:
        return int(self._channel.channel_number)

    def write(self, frames: bytes) -> None:
        """Queue ``frames`` behind what pika queued before (a channel that is not open
        raises pika's own error, as its basic_publish would)."""
        if not self._channel.is_open:
            raise pika.exceptions.ChannelWrongStateError("Channel is closed.")
        self._connection.bytes_sent += len(frames)
        self._connection._adapter_emit_data(frames)

    def join_pending(self) -> None:
        """Join what waits to be sent into one piece (one ``send``, not one per frame)."""
        transport = getattr(self._connection, "_transport", None)
        buffers = getattr(transport, "_tx_buffers", None)
        if buffers is not None and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)
