"""RabbitMQ over AMQP 0-9-1 (``amqp://user:pass@host:5672/vhost``), through pika, as upstream.

On the wire as upstream's PikaTransport: queue sends on the default exchange with the queue's
name as routing key, persistent, ``mandatory``; broadcasts on a fanout exchange named after
the topic; the ``workflows-recipe`` header an AMQP boolean; ``expiration`` integer ms.

- **One I/O thread** owns the connection; every operation runs there (other threads hand it
  over and wait), so pika is only ever used from one thread.
- **Transactions**: one channel in ``tx`` mode carries every consumer, ack, nack and publish.
  A transaction's frames are held here and written with its ``tx.commit`` in one go on the
  I/O thread, so transactions of different threads never mix; a send or ack outside a
  transaction is a transaction of its own. Every commit waits for ``tx.commit-ok``: what was
  sent is stored when it returns (``confirm`` changes nothing here).
- **Never a silent drop**: before a queue send the queue's existence is checked (a passive
  declare on a separate probe channel, remembered per connection); a missing queue is a
  TransportError naming the command that creates it. A mandatory message that still comes
  back (its queue deleted in between) makes the commit raise a TransportError naming it.
- **Delivery counts** come from quorum queues (``x-delivery-count``); their ``delivery-limit``
  dead-letters to ``dlq.<queue>`` with ``x-death``, read back as ``original-destination``.
  Services still quarantine redelivered messages in ``<queue>.suspects`` (declared by the
  transport, dead-lettering to ``dlq.<queue>``): RabbitMQ counts a delivery for every
  message a crashed consumer held, so its limit alone dead-letters good messages that were
  only prefetched beside one that kills its consumer (measured: 8 of 50 good runs).
- **Delays**, chosen at connect and shown in the repr: upstream's ``delayed`` exchange where
  the plugin is, else TTL queues (:mod:`zocalo_nb.transport.amqp_names`).
- **Statistics and browsing**: :mod:`zocalo_nb.transport.amqp_looking`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from zocalo_nb.config import Settings
from zocalo_nb.errors import MissingExtra
from zocalo_nb.transport.amqp_calls import Call, death_record, delivered, translated
from zocalo_nb.transport.amqp_frames import FrameWriter, publish_frames
from zocalo_nb.transport.amqp_held import HeldDeliveries
from zocalo_nb.transport.amqp_looking import RabbitLooking
from zocalo_nb.transport.amqp_names import BrokerNames
from zocalo_nb.transport.base import (
    AckMode,
    Callback,
    Kind,
    Subscription,
    Transport,
    TransportError,
)
from zocalo_nb.transport.message import Message
from zocalo_nb.transport.rabbitmq_api import ManagementAPI
from zocalo_nb.wire.headers import (
    MESSAGE_ID,
    RECIPE,
    X_DEATH,
    X_DELAY,
)
from zocalo_nb.wire.queues import DELAYED_EXCHANGE, RABBITMQ_DLQ_PREFIX

try:
    import pika
    import pika.exceptions
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("rabbitmq", error.name) from error

log = logging.getLogger(__name__)
T = TypeVar("T")


class AmqpTransport(RabbitLooking, Transport):
    """RabbitMQ through pika (see module docstring)."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        super().__init__(settings)
        self.timeout = timeout
        self.api = ManagementAPI.for_settings(settings)
        #: How the broker names this client's connection (its management API shows it).
        self.connection_name = f"zocalo_nb-{uuid.uuid4().hex[:12]}"
        self._io: threading.Thread | None = None
        self._connection: Any = None
        self._channel: Any = None
        self.names = BrokerNames(settings, lambda: self._connection)
        self._closing = False
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._subs: dict[str, tuple[Subscription, Callback, AckMode, int]] = {}
        self._consumer_tags: dict[str, str] = {}
        #: Delivery tags handed out and not yet acked or nacked, by subscription.
        self._held = HeldDeliveries()
        self._pending: dict[str, list[Callable[[], None]]] = {}
        self._waiting: set[Call[Any]] = set()
        #: Messages the broker returned as unroutable during the commit under way.
        self._returns: list[str] = []
        #: How delayed queue sends travel: "plugin" (upstream's ``delayed`` exchange) or
        #: "ttl" (our TTL queues); decided at connect.
        self.delays = "ttl"

    # -- lifecycle -------------------------------------------------------------------------
    def connect(self) -> AmqpTransport:
        with self._lock:
            if self._io is not None and self._io.is_alive():
                return self
            self._closing, self._failure = False, None
            self._ready.clear()
            self._io = threading.Thread(target=self._run, daemon=True, name="zocalo-nb-amqp")
            self._io.start()
        self.delays = "plugin" if self.api.has_delayed_exchange(self.settings.vhost) else "ttl"
        if not self._ready.wait(self.timeout) or self._failure is not None:
            self.close()
            raise TransportError(
                f"cannot connect to RabbitMQ at {self.settings.redacted_url()}: "
                f"{self._failure or 'no answer'}",
                hint="check host, port, vhost, user and password (amqp://user:pw@host:5672/vhost)",
            )
        return self

    def close(self) -> None:
        self._closing = True
        io = self._io
        if io is not None and io is not threading.current_thread():
            io.join(self.timeout)
        self._io = None

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._closing

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "closed"
        return (
            f"<AmqpTransport {self.settings.redacted_url()} {state}; delays via "
            f"{'the delayed-message plugin' if self.delays == 'plugin' else 'TTL queues'}; "
            f"{'declares queues' if self.settings.declare else 'queues from the topology'}>"
        )

    def _run(self) -> None:
        backoff = 0.5
        while not self._closing:
            try:
                self._open()
            except Exception as err:
                if not self._ready.is_set():  # the first connect fails for the caller
                    self._failure = err
                    self._ready.set()
                    return
                log.warning("RabbitMQ: reconnecting failed (%s); again in %.1f s", err, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            self._ready.set()
            try:
                while not self._closing:
                    self._connection.process_data_events(time_limit=0.2)
            except Exception as err:
                log.warning("RabbitMQ connection lost: %s", err)
            finally:
                self._shut()

    def _open(self) -> None:
        settings = self.settings
        parameters = pika.ConnectionParameters(
            host=settings.host,
            port=settings.port,
            virtual_host=settings.vhost,
            credentials=pika.PlainCredentials(
                settings.username or "guest", settings.password or "guest"
            ),
            heartbeat=max(settings.heartbeat // 1000, 0),
            connection_attempts=1,
            socket_timeout=5,
            blocked_connection_timeout=60,
            client_properties={"connection_name": self.connection_name},
        )
        connection = pika.BlockingConnection(parameters)
        channel = connection.channel()
        channel.tx_select()
        # on the channel itself, not the blocking wrapper (which would queue the return until
        # after tx.commit-ok): RabbitMQ sends a transaction's returns before its commit-ok
        channel._impl.add_on_return_callback(self._returned)
        self._connection, self._channel = connection, channel
        self._frames = FrameWriter(connection, channel)
        self.names.forget()
        self._held.new_connection()
        for sub, callback, ack, prefetch in list(self._subs.values()):
            self._consume(sub, callback, ack, prefetch)

    def _shut(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        for call in list(self._waiting):
            call.fail(TransportError("the RabbitMQ connection was lost", hint="try again"))
        if connection is not None:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # closing a broken connection
                log.debug("closing the RabbitMQ connection failed", exc_info=True)

    def _call(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the I/O thread (at once when already there) and return its
        result; pika's errors become TransportError."""
        if threading.current_thread() is self._io:
            return translated(action)
        connection = self._connection
        if connection is None or self._closing:
            raise TransportError(
                "not connected to RabbitMQ", hint="connect() first, or wait for the reconnect"
            )
        call: Call[T] = Call(action)
        self._waiting.add(call)
        try:
            connection.add_callback_threadsafe(call.run)
            return call.result(self.timeout)
        except pika.exceptions.AMQPError as err:
            raise TransportError(f"RabbitMQ: {err!r}", hint="the connection closed") from err
        finally:
            self._waiting.discard(call)

    def _returned(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        where = method.routing_key or method.exchange
        log.error("RabbitMQ returned a message to %r as unroutable (%s)", where, method.reply_text)
        self._returns.append(f"{where} ({method.reply_code} {method.reply_text})")

    def _commit_now(self, operations: list[Callable[[], None]]) -> None:
        """On the I/O thread: write ``operations``' frames and commit them as one transaction.
        The frames are written unflushed (pika's channel object, not its blocking wrapper,
        which would flush after every frame) and go out together with ``tx.commit``. A
        message the broker returned as unroutable makes the commit raise."""
        self._returns.clear()
        try:
            for operation in operations:
                operation()
            self._frames.join_pending()
            self._channel.tx_commit()
        except BaseException:
            if self._channel is not None and self._channel.is_open:
                self._channel.tx_rollback()
            raise
        if self._returns:
            returned, self._returns = self._returns, []
            self.names.forget()  # what we knew exists may have gone
            raise TransportError(
                f"RabbitMQ could not route {len(returned)} message(s) of this transaction: "
                f"{', '.join(returned)}; the rest of the transaction was committed",
                hint="the queue was deleted since this connection checked it; declare it "
                "again (zocalo-nb rabbitmq configure) and send again",
            )

    # -- sending ---------------------------------------------------------------------------
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
        table: dict[str, Any] = {k: (v == "True") if k == RECIPE else v for k, v in headers.items()}
        if kind == "queue" and name.startswith(RABBITMQ_DLQ_PREFIX) and X_DEATH not in table:
            # a dead letter we put there ourselves: the record RabbitMQ would have written,
            # which upstream's DLQ tools read (zocalo.dlq_purge, zocalo.dlq_reinject)
            table[X_DEATH] = death_record(name.removeprefix(RABBITMQ_DLQ_PREFIX))
        milliseconds = int(delay * 1000) if delay and delay > 0 else 0
        plugin = bool(milliseconds) and kind == "queue" and self.delays == "plugin"
        if plugin:
            table[X_DELAY] = milliseconds  # upstream's delayed send
        properties: dict[str, Any] = {
            "headers": table,
            "delivery_mode": 2 if kind == "queue" else 1,
            "message_id": headers.get(MESSAGE_ID),
            "timestamp": int(time.time()),
            "expiration": str(int(expiration * 1000)) if expiration and not delay else None,
        }
        body = text.encode()

        def route() -> tuple[str, str, bool]:
            if kind == "queue":
                self.names.require_queue(name)
                exchange, key = "", name
            else:
                self.names.require_exchange(name)
                exchange, key = name, ""
            if plugin:
                return DELAYED_EXCHANGE, key, False  # the plugin returns every mandatory one
            if milliseconds:
                return self.names.delay_exchange(milliseconds, exchange), key, True
            return exchange, key, kind == "queue"

        if not milliseconds and self.names.knows(kind, name):
            # known on this connection: no need to ask the I/O thread (a reconnect forgets)
            exchange, key, mandatory = ("", name, True) if kind == "queue" else (name, "", False)
        else:
            exchange, key, mandatory = self._call(route)

        def publish() -> None:
            frames = self._frames
            frames.write(
                publish_frames(
                    frames.channel_number, frames.max_body, exchange, key, mandatory, body,
                    **properties,
                )
            )  # fmt: skip

        self._in_transaction(transaction, publish)

    def _in_transaction(self, transaction: str | None, operation: Callable[[], None]) -> None:
        if transaction is not None:
            with self._lock:
                if transaction not in self._pending:
                    raise TransportError(
                        f"no open transaction {transaction!r}", hint="begin() it first"
                    )
                self._pending[transaction].append(operation)
            return

        self._call(lambda: self._commit_now([operation]))

    # -- receiving -------------------------------------------------------------------------
    def _subscribe(
        self, sub: Subscription, callback: Callback, ack: AckMode, prefetch: int
    ) -> None:
        with self._lock:
            self._subs[sub.id] = (sub, callback, ack, prefetch)
        try:
            self._call(lambda: self._consume(sub, callback, ack, prefetch))
        except BaseException:
            with self._lock:
                self._subs.pop(sub.id, None)
            raise

    def _consume(self, sub: Subscription, callback: Callback, ack: AckMode, prefetch: int) -> None:
        """On the I/O thread: start consuming for ``sub``."""
        channel = self._channel
        if sub.kind == "topic":
            self.names.require_exchange(sub.destination)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(queue, sub.destination)
        else:
            self.names.require_queue(sub.destination)
            queue = sub.destination
        channel.basic_qos(prefetch_count=prefetch)
        generation = self._held.generation
        self._held.watch(sub.id)

        def deliver(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            message = delivered(sub, method, properties, body, generation)
            if ack != "auto":
                self._held.hold(sub.id, method.delivery_tag)
            try:
                callback(message)
            except Exception:
                log.exception("callback for %s raised; the transport goes on", sub.destination)

        self._consumer_tags[sub.id] = channel.basic_consume(
            queue, deliver, auto_ack=ack == "auto", consumer_tag=f"{sub.id}-{generation}"
        )

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subs.pop(subscription.id, None)

        def cancel() -> None:
            tag = self._consumer_tags.pop(subscription.id, None)
            if tag is not None and self._channel is not None:
                self._channel.basic_cancel(tag)
                for held in self._held.release(subscription.id):  # back to the queue
                    self._channel.basic_nack(held, requeue=True)
                self._channel.tx_commit()

        if self.is_connected:
            self._call(cancel)

    # -- acknowledging ---------------------------------------------------------------------
    def _settle(self, message: Message, transaction: str | None, ack: bool) -> None:
        entry = self._subs.get(message.subscription)
        cumulative = ack and entry is not None and entry[2] == "cumulative"

        def settle() -> None:
            channel = self._channel._impl  # frames unflushed: they go with the commit
            tags, multiple = self._held.take(message, cumulative)
            if multiple:
                channel.basic_ack(tags[-1], multiple=True)
                return
            for tag in tags:
                if ack:
                    channel.basic_ack(tag)
                else:
                    channel.basic_nack(tag, requeue=True)

        self._in_transaction(transaction, settle)

    def _ack(self, message: Message, transaction: str | None) -> None:
        self._settle(message, transaction, ack=True)

    def _nack(self, message: Message, transaction: str | None) -> None:
        self._settle(message, transaction, ack=False)

    # -- transactions ----------------------------------------------------------------------
    def _begin(self, transaction: str) -> None:
        with self._lock:
            self._pending[transaction] = []

    def _commit(self, transaction: str, confirm: bool) -> None:
        with self._lock:
            operations = self._pending.pop(transaction, None)
        if operations is None:
            raise TransportError(f"no open transaction {transaction!r}", hint="begin() it first")

        self._call(lambda: self._commit_now(operations))

    def _abort(self, transaction: str) -> None:
        with self._lock:
            self._pending.pop(transaction, None)
        if not self.is_connected:
            raise TransportError("not connected", hint="the broker redelivers by itself")

    def sibling(self) -> AmqpTransport:
        return AmqpTransport(self.settings, timeout=self.timeout).connect()
