"""Transactions on one STOMP connection, kept apart (see :class:`Transactions`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from zocalo_nb.transport.base import TransportError

#: Writes one frame through stomp.py, turning its errors into TransportError.
Wire = Callable[..., Any]

LENGTH = "content-length"
#: STOMP 1.2 header value escapes, as stomp.py applies them.
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", ":": "\\c", "\r": "\\r"})


def frame(command: str, headers: Mapping[str, str], body: str = "") -> bytes:
    """One STOMP 1.2 frame as stomp.py writes it: header values escaped, and a
    ``content-length`` when there is a body."""
    data = body.encode("utf-8")
    lines = [command]
    lines += (f"{k}:{str(v).translate(_ESCAPES)}" for k, v in headers.items() if k != LENGTH)
    if data:
        lines.append(f"{LENGTH}:{len(data)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + data + b"\x00"


class Transactions:
    """The open transactions of one STOMP connection, each held client-side until it ends.

    ActiveMQ's STOMP layer keeps transacted acks per subscription, not per transaction: a
    COMMIT applies the pending acks of every subscription of the connection, and an ABORT
    drops them all. Were two threads' transactions interleaved on one connection, one COMMIT
    would take the other's acks without its sends (lost runs after a crash), and an ABORT
    would drop them (duplicates). So nothing of a transaction goes out before it ends: its
    BEGIN, SENDs, ACKs/NACKs and COMMIT are written at commit in one write, which no other
    frame can come between, and an abort writes nothing (the broker never heard of it).

    One write per transaction instead of one per frame also spares stomp.py's per-frame work
    and a system call per frame (a batch of 20 forwarded messages was 43 writes).
    """

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._held: dict[str, list[bytes]] = {}
        self._generation: dict[str, int] = {}  # the connection each transaction began on

    def begun(self, transaction: str, generation: int) -> None:
        self._generation[transaction] = generation
        self._held[transaction] = []

    def check(self, transaction: str, generation: int) -> None:
        """Raise if ``transaction`` did not begin on the connection of ``generation``."""
        if self._generation.get(transaction) != generation:
            raise TransportError(
                f"transaction {transaction} belongs to a connection that was lost",
                hint="nothing in it was committed; the broker redelivers its messages",
            )

    def send(self, transaction: str, headers: Mapping[str, str], body: str) -> None:
        """A SEND of ``transaction`` (``headers`` name its destination), written at commit."""
        self._held.setdefault(transaction, []).append(
            frame("SEND", {**headers, "transaction": transaction}, body)
        )

    def hold(self, transaction: str, is_ack: bool, ack_id: str) -> None:
        """An ACK (or NACK) of ``transaction``, written at commit."""
        self._held.setdefault(transaction, []).append(
            frame("ACK" if is_ack else "NACK", {"id": ack_id, "transaction": transaction})
        )

    def commit(self, conn: Any, transaction: str, headers: dict[str, str]) -> None:
        """Write the whole transaction: BEGIN, what it holds, COMMIT, in one write."""
        held = self._held.pop(transaction, [])
        data = b"".join(
            [
                frame("BEGIN", {"transaction": transaction}),
                *held,
                frame("COMMIT", {**headers, "transaction": transaction}),
            ]
        )
        self._wire(conn.transport.send, data)

    def forget(self, transaction: str) -> None:
        """Drop ``transaction`` and what it held (its end, or an abort: nothing was written)."""
        self._held.pop(transaction, None)
        self._generation.pop(transaction, None)
