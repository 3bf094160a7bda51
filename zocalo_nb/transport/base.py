"""The Transport interface shared by ``memory://`` and ``stomp://``.

Implementations fill in a few primitives (``_send``, ``_subscribe``, ``_ack``, ``_nack``,
``_begin``, ``_commit``, ``_abort``, ``browse``, ``statistics``); this base adds the rest:
JSON encoding, our stable message id, destination naming with the namespace prefix, and
transactions as a context manager that hands back the input when the work fails.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal

from zocalo_nb.config import Settings
from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.transport.message import MESSAGE_ID, Message, RawBody, encode, new_message_id
from zocalo_nb.wire.queues import DLQ_PREFIX

AckMode = Literal["auto", "client", "cumulative"]
Callback = Callable[[Message], None]
#: Destination kinds ("temp-queue": STOMP temporary queues, used inside the STOMP transport).
Kind = Literal["queue", "topic", "temp-queue"]


class TransportError(ZocaloNbError):
    """A transport operation failed (not connected, broker refused, bad destination...)."""


@dataclass(frozen=True)
class QueueStats:
    """Counters of one queue: messages waiting (incl. unacked), consumers, enqueued, dequeued."""

    queue: str
    depth: int
    consumers: int
    enqueued: int
    dequeued: int


@dataclass(frozen=True)
class Prepared:
    """A message ready for the wire: kind, broker-side name, encoded body, headers."""

    kind: Kind
    name: str
    text: str
    headers: Mapping[str, str]


#: Header names already checked (the same few names come with every message).
_CHECKED: set[str] = set()


def _header_name(key: object) -> str:
    """A header name as sent: text without the characters that end a STOMP header line."""
    if type(key) is str and key in _CHECKED:
        return key
    name = str(key)
    if not name or any(c in name for c in ":\r\n\0"):
        raise TransportError(
            f"header name {name!r} is empty or holds ':', a line break or NUL",
            hint="header names are plain words such as 'zocalo-nb-attempt'",
        )
    if type(key) is str and len(_CHECKED) < 1024:
        _CHECKED.add(name)
    return name


@dataclass(frozen=True)
class Subscription:
    """A handle returned by subscribe; pass it to :meth:`Transport.unsubscribe`."""

    id: str
    destination: str
    kind: Kind
    #: The callback only hands each message to another thread (see Transport.subscribe).
    handoff: bool = False


class Transport(abc.ABC):
    """Send, broadcast, subscribe, ack/nack, transactions, browse and statistics.

    Destinations are plain names (``"per_image_analysis"``) that the transport puts in its
    namespace (``<prefix>.<name>``); a name starting with ``/`` (``/queue/DLQ.zocalo.x``) is
    used as it is. All state lives on the instance.

    Example::

        with zocalo_nb.connect("memory://") as transport:
            transport.subscribe("work", lambda m: print(m.body), ack="auto")
            transport.send("work", {"n": 1})
    """

    #: True where the broker lives in this process (no network round trip to hide).
    in_process: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._tx_acks: dict[str, list[Message]] = {}
        #: What higher layers keep with this connection (a monitor's shared tap), by name.
        self.extensions: dict[str, object] = {}
        self.extensions_lock = threading.Lock()  # not _lock: connecting must not wait on it

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def connect(self) -> Transport:
        """Connect (idempotent); returns self."""

    @abc.abstractmethod
    def close(self) -> None:
        """Disconnect; unacknowledged messages go back to the broker."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """True while connected."""

    def __enter__(self) -> Transport:
        return self.connect()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "closed"
        return f"<{type(self).__name__} {self.settings.redacted_url()} {state}>"

    # -- naming ----------------------------------------------------------------------------
    def name(self, destination: str) -> str:
        """The broker-side name of ``destination`` (prefix added unless it starts with /)."""
        if destination.startswith("/"):
            parts = destination.split("/", 2)
            if len(parts) < 3 or not parts[1] or not parts[2]:
                raise TransportError(
                    f"destination {destination!r} is neither a name nor /KIND/NAME",
                    hint='write "per_image_analysis" (in the namespace) or '
                    '"/queue/zocalo.per_image_analysis" (absolute)',
                )
            return parts[2]
        prefix = self.settings.prefix  # no namespace: names as they are (upstream's rule)
        return f"{prefix}.{destination}" if prefix else destination

    def dlq(self, queue: str) -> str:
        """The absolute name of the dead-letter queue of ``queue`` (ActiveMQ's ``DLQ.`` rule)."""
        return f"/queue/{DLQ_PREFIX}{self.name(queue)}"

    # -- sending ---------------------------------------------------------------------------
    def send(
        self,
        queue: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        delay: float | None = None,
        expiration: float | None = None,
        transaction: str | None = None,
    ) -> str:
        """Send ``body`` (JSON-encoded) to a queue; returns our stable message id.

        ``delay`` and ``expiration`` are seconds from now.
        """
        return self._send_any("queue", queue, body, headers, delay, expiration, transaction)

    def broadcast(
        self,
        topic: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        delay: float | None = None,
        expiration: float | None = None,
        transaction: str | None = None,
    ) -> str:
        """Publish ``body`` to every current subscriber of a topic; returns our message id."""
        return self._send_any("topic", topic, body, headers, delay, expiration, transaction)

    def _send_any(
        self,
        kind: Kind,
        destination: str,
        body: Any,
        headers: Mapping[str, Any] | None,
        delay: float | None,
        expiration: float | None,
        transaction: str | None,
    ) -> str:
        prepared = self.prepare(kind, destination, body, headers)
        return self.send_prepared(
            prepared, delay=delay, expiration=expiration, transaction=transaction
        )

    def prepare(
        self, kind: Kind, destination: str, body: Any, headers: Mapping[str, Any] | None = None
    ) -> Prepared:
        """Everything a send can fail on before it touches the wire: the destination's name,
        the headers and the JSON encoding. Raises TransportError for a bad destination or
        header, and the encoder's own error (TypeError, ValueError, RecursionError) for a
        body that is not JSON. Services prepare their outputs as the handler returns, so a
        transaction only ever carries messages that can be sent."""
        if not isinstance(destination, str) or not destination:
            raise TransportError(
                f"destination {destination!r} is not a queue or topic name",
                hint='e.g. "per_image_analysis"',
            )
        if destination.startswith("/topic/"):
            kind = "topic"
        elif destination.startswith("/queue/"):
            kind = "queue"
        if headers:
            final = {_header_name(k): str(v) for k, v in headers.items()}
            if MESSAGE_ID not in final:
                final[MESSAGE_ID] = new_message_id()
        else:
            final = {MESSAGE_ID: new_message_id()}
        text = body if isinstance(body, RawBody) else encode(body)
        return Prepared(kind, self.name(destination), str(text), final)

    def send_prepared(
        self,
        prepared: Prepared,
        *,
        delay: float | None = None,
        expiration: float | None = None,
        transaction: str | None = None,
    ) -> str:
        """Send what :meth:`prepare` made; returns our message id."""
        self._send(
            prepared.kind,
            prepared.name,
            prepared.text,
            dict(prepared.headers),
            delay,
            expiration,
            transaction,
        )
        return prepared.headers[MESSAGE_ID]

    # -- receiving -------------------------------------------------------------------------
    def subscribe(
        self,
        queue: str,
        callback: Callback,
        *,
        ack: AckMode = "client",
        prefetch: int | None = None,
        handoff: bool = False,
    ) -> Subscription:
        """Consume ``queue``: competing consumers share its messages. With ``ack="client"``
        every message must be acked or nacked; at most ``prefetch`` are held unacked.

        ``ack="cumulative"`` (STOMP's ``client`` mode): acking a message also acks every
        message this subscription received before it. Use it when one thread handles the
        subscription's messages in the order received; on ActiveMQ it avoids a cost that
        grows with every message acked in a transaction on ``client-individual``
        subscriptions (see ``ActiveMQ`` in README.md).

        ``handoff=True`` promises that ``callback`` only hands each message on to a thread of
        the caller's (a queue's ``put``): it returns at once and never raises. A transport
        may then call it on whichever thread makes the message deliverable, its own locks
        held. The in-process broker does so for acknowledged subscriptions, which saves a
        thread switch per message (the service runner's workers; see
        ``docs/memory-broker-speed.md``); the network transports call every callback on
        their receiving thread in any case."""
        return self._subscribe_any("queue", queue, callback, ack, prefetch, handoff)

    def subscribe_topic(self, topic: str, callback: Callback) -> Subscription:
        """Receive every message broadcast on ``topic`` from now on (auto-acknowledged)."""
        return self._subscribe_any("topic", topic, callback, "auto", None)

    def _subscribe_any(
        self,
        kind: Kind,
        destination: str,
        callback: Callback,
        ack: AckMode,
        prefetch: int | None,
        handoff: bool = False,
    ) -> Subscription:
        if ack not in ("auto", "client", "cumulative"):
            raise TransportError(
                f"unknown ack mode {ack!r}", hint='use "auto", "client" or "cumulative"'
            )
        sub = Subscription(
            f"zocalo-nb-{next(self._ids)}", self.name(destination), kind, handoff=handoff
        )
        self._subscribe(sub, callback, ack, prefetch or self.settings.prefetch)
        return sub

    def ack(self, message: Message, *, transaction: str | None = None) -> None:
        """Acknowledge: the broker forgets the message (at commit, inside a transaction)."""
        if transaction is not None:
            with self._lock:
                self._tx_acks.setdefault(transaction, []).append(message)
        self._ack(message, transaction)

    def nack(self, message: Message, *, transaction: str | None = None) -> None:
        """Reject: the broker redelivers later, and dead-letters after its limit."""
        self._nack(message, transaction)

    # -- transactions ----------------------------------------------------------------------
    def begin(self) -> str:
        """Start a transaction; pass its id as ``transaction=`` to send/ack; then commit/abort."""
        transaction = f"tx-{id(self):x}-{next(self._ids)}"
        self._begin(transaction)
        return transaction

    def commit(self, transaction: str, *, confirm: bool = False) -> None:
        """Make the transaction's sends and acks happen, atomically.

        With ``confirm``, return only once the broker has committed (a STOMP receipt): what
        was sent is then stored, even if the broker stops a moment later. Without it, commit
        is fire-and-forget, as upstream's is.
        """
        with self._lock:
            self._tx_acks.pop(transaction, None)
        self._commit(transaction, confirm)

    def abort(self, transaction: str) -> None:
        """Drop the transaction's sends; messages it acked are nacked so they come back."""
        with self._lock:
            acked = self._tx_acks.pop(transaction, [])
        try:
            self._abort(transaction)
        except TransportError:
            return  # the connection is gone: the broker rolls back and redelivers by itself
        for message in acked:  # ActiveMQ keeps aborted acks with this consumer otherwise
            self._nack(message, None)

    @contextlib.contextmanager
    def transaction(self, *, confirm: bool = False) -> Iterator[str]:
        """``with transport.transaction() as tx:`` commit on success, abort on any error.

        ``confirm`` waits for the broker to confirm the commit (see :meth:`commit`).
        """
        transaction = self.begin()
        try:
            yield transaction
        except BaseException:
            self.abort(transaction)
            raise
        self.commit(transaction, confirm=confirm)

    # -- primitives for implementations ----------------------------------------------------
    @abc.abstractmethod
    def _send(
        self,
        kind: Kind,
        name: str,
        text: str,
        headers: dict[str, str],
        delay: float | None,
        expiration: float | None,
        transaction: str | None,
    ) -> None:
        """Send one prepared message; ``headers`` is a fresh dict the transport may change."""

    @abc.abstractmethod
    def _subscribe(
        self, sub: Subscription, callback: Callback, ack: AckMode, prefetch: int
    ) -> None: ...

    @abc.abstractmethod
    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription; its unacked messages go back to the queue."""

    @abc.abstractmethod
    def _ack(self, message: Message, transaction: str | None) -> None: ...

    @abc.abstractmethod
    def _nack(self, message: Message, transaction: str | None) -> None: ...

    @abc.abstractmethod
    def _begin(self, transaction: str) -> None: ...

    @abc.abstractmethod
    def _commit(self, transaction: str, confirm: bool) -> None: ...

    @abc.abstractmethod
    def _abort(self, transaction: str) -> None: ...

    @abc.abstractmethod
    def browse(
        self, queue: str, *, limit: int | None = None, timeout: float = 5.0
    ) -> list[Message]:
        """The messages waiting in ``queue``, oldest first, without consuming them."""

    @abc.abstractmethod
    def sibling(self) -> Transport:
        """A new connection with the same settings to the same broker (closing it hands
        back only what it holds)."""

    @abc.abstractmethod
    def statistics(self, queue: str, *, timeout: float = 5.0) -> QueueStats:
        """Depth, consumers, enqueued and dequeued counters of ``queue``."""

    @abc.abstractmethod
    def list_queues(self, prefix: str, *, timeout: float = 5.0) -> list[QueueStats]:
        """Counters of every queue whose broker-side name starts with ``prefix`` (which ends
        in ``.``, e.g. ``"DLQ.zocalo."``); each ``queue`` is absolute (``/queue/...``)."""

    def dead_letter_queues(self) -> list[QueueStats]:
        """The dead-letter queues of this namespace (``DLQ.<prefix>.*``), with counters."""
        prefix = self.settings.prefix
        return self.list_queues(f"{DLQ_PREFIX}{prefix}." if prefix else DLQ_PREFIX)
