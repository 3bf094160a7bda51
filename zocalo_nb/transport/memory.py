"""``memory://``: a Transport on an in-process :class:`MemoryBroker` (the embedded default)."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any

from zocalo_nb.config import Settings
from zocalo_nb.transport.base import (
    AckMode,
    Callback,
    Kind,
    QueueStats,
    Subscription,
    Transport,
    TransportError,
)
from zocalo_nb.transport.memory_broker import Consumer, Envelope, MemoryBroker
from zocalo_nb.transport.message import Message, decode
from zocalo_nb.wire.headers import EXPIRES, PERSISTENT, REDELIVERED

log = logging.getLogger(__name__)
_STOP = object()


class MemoryTransport(Transport):
    """A connection to a MemoryBroker. Callbacks run on one delivery thread per transport,
    in order, as stomp.py's receiver thread does; those of hand-off subscriptions
    (``subscribe(..., handoff=True)``, acknowledged ones) run where the message becomes
    deliverable, in order too (see :meth:`enqueue_delivery`).

    Without a ``broker`` the transport makes a private one; share a broker between
    transports with ``broker.connect()`` or ``MemoryTransport(settings, broker)``.
    """

    in_process = True

    def __init__(self, settings: Settings | None = None, broker: MemoryBroker | None = None):
        super().__init__(settings or Settings(source="memory"))
        self._owns_broker = broker is None
        self.broker = broker or MemoryBroker()
        self._consumers: dict[str, Consumer] = {}
        self._tx: dict[str, tuple[list[tuple[Envelope, float | None]], list[Any]]] = {}
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._seq = itertools.count(1)
        self._id_prefix = f"ID:memory-{id(self):x}-"

    # -- lifecycle -------------------------------------------------------------------------
    def connect(self) -> MemoryTransport:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._deliver_loop, name="zocalo-nb-memory-delivery", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        for consumer in list(self._consumers.values()):
            self.broker.remove_consumer(consumer)
        self._consumers.clear()
        self._inbox.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(timeout=10)
        if self._owns_broker:
            self.broker.close()

    @property
    def is_connected(self) -> bool:
        return self._thread is not None

    def _require(self) -> None:
        if self._thread is None:
            raise TransportError(
                "the memory transport is not connected", hint="call connect() or use 'with'"
            )

    # -- primitives ------------------------------------------------------------------------
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
        self._require()
        now = time.time()
        expires = now + (delay or 0) + expiration if expiration else None
        headers["timestamp"] = str(int(now * 1000))  # as ActiveMQ stamps sends
        if expires is not None:
            headers[EXPIRES] = str(int(expires * 1000))
        if kind == "queue":
            headers[PERSISTENT] = "true"
        envelope = Envelope(
            f"{self._id_prefix}{next(self._seq)}", kind, name, text, headers, expires
        )
        if transaction is not None:
            self._transaction(transaction)[0].append((envelope, delay))
        else:
            self.broker.publish(envelope, delay)

    def _subscribe(
        self, sub: Subscription, callback: Callback, ack: AckMode, prefetch: int
    ) -> None:
        self._require()
        consumer = Consumer(sub.id, self, callback, sub.kind, sub.destination, ack, prefetch)
        # Only where acks count: join() takes an auto-acked message as done when its callback
        # returns, and a hand-off callback returns before the work it hands on is done.
        consumer.handoff = sub.handoff and ack != "auto"
        self._consumers[sub.id] = consumer
        self.broker.add_consumer(consumer)

    def unsubscribe(self, subscription: Subscription) -> None:
        consumer = self._consumers.pop(subscription.id, None)
        if consumer is not None:
            self.broker.remove_consumer(consumer)

    def _consumer(self, message: Message) -> Consumer:
        consumer = self._consumers.get(message.subscription)
        if consumer is None:
            raise TransportError(
                f"message {message.message_id} was not received by a subscription of this "
                "transport (or it was unsubscribed)",
                hint="ack/nack on the transport whose callback received the message",
            )
        return consumer

    def _ack(self, message: Message, transaction: str | None) -> None:
        consumer = self._consumer(message)
        if transaction is not None:
            if not self.broker.holds(consumer, message.ack_id):
                raise TransportError(
                    f"message {message.message_id} is not held unacknowledged",
                    hint="ack each message once, and only with ack='client'",
                )
            self._transaction(transaction)[1].append(("ack", consumer, message.ack_id))
        else:
            self.broker.ack(consumer, message.ack_id)

    def _nack(self, message: Message, transaction: str | None) -> None:
        consumer = self._consumer(message)
        if transaction is not None:
            self._transaction(transaction)[1].append(("nack", consumer, message.ack_id))
        else:
            self.broker.nack(consumer, message.ack_id)

    def _transaction(self, transaction: str) -> tuple[list[Any], list[Any]]:
        try:
            return self._tx[transaction]
        except KeyError:
            raise TransportError(
                f"unknown transaction {transaction!r}",
                hint="use the id returned by begin(), before commit or abort",
            ) from None

    def _begin(self, transaction: str) -> None:
        self._require()
        self._tx[transaction] = ([], [])

    def _commit(self, transaction: str, confirm: bool) -> None:  # always synchronous here
        sends, acks = self._transaction(transaction)
        del self._tx[transaction]
        with self.broker.lock:  # acks and sends become visible together
            for verb, consumer, ack_id in acks:
                (self.broker.ack if verb == "ack" else self.broker.nack)(consumer, ack_id)
            for envelope, delay in sends:
                self.broker.publish(envelope, delay)

    def _abort(self, transaction: str) -> None:
        self._transaction(transaction)
        del self._tx[transaction]

    def browse(
        self, queue: str, *, limit: int | None = None, timeout: float = 5.0
    ) -> list[Message]:
        self._require()
        name = self.name(queue)
        found = [self._message(e, "") for e in self.broker.snapshot(name)]
        return found[:limit] if limit is not None else found

    def statistics(self, queue: str, *, timeout: float = 5.0) -> QueueStats:
        self._require()
        depth, consumers, enqueued, dequeued = self.broker.stats(self.name(queue))
        return QueueStats(queue, depth, consumers, enqueued, dequeued)

    def sibling(self) -> MemoryTransport:
        return MemoryTransport(self.settings, self.broker).connect()

    def list_queues(self, prefix: str, *, timeout: float = 5.0) -> list[QueueStats]:
        self._require()
        return [
            QueueStats(f"/queue/{name}", *self.broker.stats(name))
            for name in self.broker.queue_names(prefix)
        ]

    # -- delivery --------------------------------------------------------------------------
    def enqueue_delivery(self, consumer: Consumer, envelope: Envelope) -> None:
        """Called by the broker (lock held): queue a callback on this transport's thread, or,
        for a hand-off subscription, call it here and now (on the thread that sent, acked or
        gave up the message). The switch to the delivery thread and back cost the memory://
        pipeline about a fifth of its rate (docs/memory-broker-speed.md)."""
        if not consumer.handoff:
            self._inbox.put((consumer, envelope, envelope.delivery_count))
            return
        error: BaseException | None = None
        try:
            consumer.callback(self._message(envelope, consumer.id, envelope.delivery_count))
        except Exception as err:  # a broken promise: reported by join(), as on the thread
            log.exception("hand-off callback for %s raised", envelope.name)
            error = err
        self.broker.delivered(error)

    def _message(self, envelope: Envelope, subscription: str, count: int = 0) -> Message:
        body, is_json = decode(envelope.text)
        headers = {
            **envelope.headers,
            "destination": f"/{envelope.kind}/{envelope.name}",
            "message-id": envelope.id,
        }
        if subscription:
            headers["subscription"] = subscription
        if count > 1:
            headers[REDELIVERED] = "true"
        return Message(
            destination=headers["destination"],
            body=body,
            headers=headers,
            is_json=is_json,
            redelivered=count > 1,
            delivery_count=count or None,
            ack_id=envelope.id,
            subscription=subscription,
            text=envelope.text,
        )

    def _deliver_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is _STOP:
                return
            consumer, envelope, count = item
            error: BaseException | None = None
            try:
                live = self._consumers.get(consumer.id) is consumer
                if live and (consumer.ack == "auto" or self.broker.holds(consumer, envelope.id)):
                    consumer.callback(self._message(envelope, consumer.id, count))
            except Exception as err:  # a callback must not kill the transport
                log.exception("callback for %s raised", envelope.name)
                error = err
            finally:
                self.broker.delivered(error)
