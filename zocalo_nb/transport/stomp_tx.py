"""Transactions on one STOMP connection, kept apart (see :class:`Transactions`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from zocalo_nb.transport.base import TransportError

#: Writes one frame through stomp.py, turning its errors into TransportError.
Wire = Callable[..., Any]


class Transactions:
    """The open transactions of one STOMP connection, and their held ACK/NACK frames.

    ActiveMQ's STOMP layer keeps transacted acks per subscription, not per transaction: a
    COMMIT applies the pending acks of every subscription of the connection, and an ABORT
    drops them all. Were two threads' transactions interleaved on one connection, one COMMIT
    would take the other's acks without its sends (lost runs after a crash), and an ABORT
    would drop them (duplicates). So acks wait here, client-side, and each transaction's acks
    and COMMIT (or ABORT) are written together under one lock: the broker never holds the
    acks of a transaction other than the one being committed.
    """

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[bool, str]]] = {}
        self._generation: dict[str, int] = {}  # the connection each transaction began on

    def begun(self, transaction: str, generation: int) -> None:
        self._generation[transaction] = generation

    def check(self, transaction: str, generation: int) -> None:
        """Raise if ``transaction`` did not begin on the connection of ``generation``."""
        if self._generation.get(transaction) != generation:
            raise TransportError(
                f"transaction {transaction} belongs to a connection that was lost",
                hint="nothing in it was committed; the broker redelivers its messages",
            )

    def hold(self, transaction: str, is_ack: bool, ack_id: str) -> None:
        """An ACK (or NACK) of ``transaction``, written with its COMMIT."""
        self._held.setdefault(transaction, []).append((is_ack, ack_id))

    def commit(self, conn: Any, transaction: str, headers: dict[str, str]) -> None:
        """Write the held frames, then COMMIT, with no other transaction's frames between."""
        frames = self._held.pop(transaction, [])
        with self._lock:
            for is_ack, ack_id in frames:
                self._wire(conn.ack if is_ack else conn.nack, ack_id, transaction=transaction)
            self._wire(conn.commit, transaction, headers=headers)

    def abort(self, conn: Any, transaction: str) -> None:
        """ABORT; the held frames were never sent, so nothing is taken back."""
        self._held.pop(transaction, None)
        with self._lock:
            self._wire(conn.abort, transaction)

    def forget(self, transaction: str) -> None:
        self._held.pop(transaction, None)
        self._generation.pop(transaction, None)
