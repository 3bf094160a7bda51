"""The benchmarks' counting consumer: when each message reaches the last queue, and nothing else.

It reads the broker's wire protocol directly (AMQP 0-9-1, no-ack, bodies skipped, not
decoded), so that measuring takes as little CPU as possible from the stacks measured: both
share the 2 cores with it, and ours is CPU-bound where upstream is not. Through a zocalo_nb
transport (pika's frame handling, JSON decoding) the benchmark process took 132 us of CPU per
recipe message on RabbitMQ, injecting included; with this reader 68 us (20,000 messages,
2026-11-30). (On
ActiveMQ the same idea over STOMP was tried and measured no faster than our transport's
subscription, so the ActiveMQ runs count through the transport.)

On ``memory://`` the benchmark shares the services' process, and so the one core Python runs
on at a time: :class:`MemoryCounter` is a consumer of the embedded broker itself, which notes
the time as the broker hands a message out (no transport, no delivery thread, nothing
decoded). Through a transport subscription the counting took about 6 us of that core per
recipe message (a thread's wake-up and a JSON decode of each), about 6% of the pipeline's.

Benchmarks only: no reconnects, no heartbeats, errors end the run.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from zocalo_nb.transport import MemoryBroker
from zocalo_nb.transport.memory_broker import Consumer

_FRAME = struct.Struct(">BHI")
_END = b"\xce"


def _short(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def _long(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class Counter:
    """Consumes a queue with no-ack on a thread of its own and counts Basic.Deliver method
    frames: records ``time.perf_counter()`` of each, then calls ``arrived(count)``."""

    def __init__(
        self, sock: socket.socket, arrived: Callable[[int], None], received: bytes = b""
    ) -> None:
        self.sock = sock
        self._received = received  # read with the handshake's last reply
        self.arrivals: list[float] = []
        self._arrived = arrived
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-counter")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            self._read()
        except OSError:
            return  # closed

    def _read(self) -> None:
        buffer = b""
        arrivals, arrived, sock = self.arrivals, self._arrived, self.sock
        data = self._received
        while True:
            if not data:
                data = sock.recv(1 << 20)
                if not data:
                    return
            buffer, data = buffer + data, b""
            at, now = 0, time.perf_counter()
            while len(buffer) - at >= 7:
                kind, _, size = _FRAME.unpack_from(buffer, at)
                end = at + 7 + size + 1
                if end > len(buffer):
                    break
                if kind == 1 and buffer[at + 7 : at + 11] == b"\x00\x3c\x00\x3c":  # deliver
                    arrivals.append(now)
                    arrived(len(arrivals))
                at = end
            buffer = buffer[at:]


class MemoryCounter:
    """Counts the messages the embedded broker hands out from one queue (auto-acknowledged):
    records ``time.perf_counter()`` of each, then calls ``arrived(count)``. It stands in for
    the transport a consumer normally has (the broker calls :meth:`enqueue_delivery`, its
    lock held)."""

    def __init__(self, broker: MemoryBroker, name: str, arrived: Callable[[int], None]) -> None:
        self.broker = broker
        self.arrivals: list[float] = []
        self._arrived = arrived
        self._consumer = Consumer("bench-counter", self, None, "queue", name, "auto", 1)  # type: ignore[arg-type]
        broker.add_consumer(self._consumer)

    def enqueue_delivery(self, consumer: Any, envelope: Any) -> None:
        self.arrivals.append(time.perf_counter())
        self._arrived(len(self.arrivals))
        self.broker.delivered()

    def close(self) -> None:
        self.broker.remove_consumer(self._consumer)


def _amqp_method(channel: int, cls: int, method: int, args: bytes) -> bytes:
    payload = struct.pack(">HH", cls, method) + args
    return _FRAME.pack(1, channel, len(payload)) + payload + _END


def _amqp_read_method(sock: socket.socket, buffer: bytearray) -> tuple[int, int, bytes]:
    while True:
        if len(buffer) >= 7:
            kind, _, size = _FRAME.unpack_from(buffer, 0)
            if len(buffer) >= 8 + size:
                payload = bytes(buffer[7 : 7 + size])
                del buffer[: 8 + size]
                if kind == 1:
                    cls, method = struct.unpack_from(">HH", payload)
                    return cls, method, payload[4:]
                continue
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("RabbitMQ closed the connection during the handshake")
        buffer += data


def amqp_counter(
    host: str, port: int, user: str, password: str, vhost: str, queue: str,
    arrived: Callable[[int], None],
) -> Counter:  # fmt: skip
    """A started counter of the messages reaching ``queue`` (AMQP 0-9-1, PLAIN login)."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    sock.sendall(b"AMQP\x00\x00\x09\x01")

    def step(cls: int, method: int) -> bytes:
        found = _amqp_read_method(sock, buffer)
        if found[:2] != (cls, method):
            raise ConnectionError(f"AMQP handshake: expected {(cls, method)}, got {found[:2]}")
        return found[2]

    step(10, 10)  # Connection.Start
    login = f"\x00{user}\x00{password}".encode()
    start_ok = _long(b"") + _short("PLAIN") + _long(login) + _short("en_US")
    sock.sendall(_amqp_method(0, 10, 11, start_ok))
    tune = step(10, 30)
    channels, frame_max, _ = struct.unpack_from(">HIH", tune)
    sock.sendall(_amqp_method(0, 10, 31, struct.pack(">HIH", channels, frame_max, 0)))
    sock.sendall(_amqp_method(0, 10, 40, _short(vhost) + _short("") + b"\x00"))
    step(10, 41)  # Connection.OpenOk
    sock.sendall(_amqp_method(1, 20, 10, _short("")))
    step(20, 11)  # Channel.OpenOk
    consume = struct.pack(">H", 0) + _short(queue) + _short("") + b"\x02" + _long(b"")  # no-ack
    sock.sendall(_amqp_method(1, 60, 20, consume))
    step(60, 21)  # Basic.ConsumeOk
    sock.settimeout(None)
    counter = Counter(sock, arrived, bytes(buffer))
    counter.start()
    return counter
