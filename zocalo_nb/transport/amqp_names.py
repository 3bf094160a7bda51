"""What exists on the broker, as the AMQP transport's I/O thread finds and declares it: queues
(checked with passive declares on a probe channel of their own, so a 404 never closes the
channel that carries consumers and transactions), fanout exchanges for topics, and the TTL
queues that delay messages; and what waits in a queue (:meth:`BrokerNames.peek`). Every
method runs on the I/O thread.

Delays are chosen at connect and shown in the repr. Where the vhost has upstream's
``delayed`` exchange of the delayed-message plugin's type (asked of the management API),
a delayed queue send goes there as upstream's does (routing key the queue, ``x-delay``
in ms; not ``mandatory``, as the plugin returns every mandatory message: the queue's
existence is checked before). Otherwise, on a stock RabbitMQ (Debian ships no plugin), and
for delayed broadcasts: a message delayed by *d* ms goes through a fanout exchange into a
queue ``zocalo-nb.delay.<d>`` whose message TTL is *d* and whose dead-letter exchange is
the target's (the default exchange for queues, keeping the routing key), so it reaches its
queue after *d*. Declared on first use, expiring when unused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from zocalo_nb.config import Settings
from zocalo_nb.errors import MissingExtra
from zocalo_nb.transport.amqp_calls import delivered
from zocalo_nb.transport.base import Subscription, TransportError
from zocalo_nb.transport.message import Message
from zocalo_nb.wire.queues import RABBITMQ_DLQ_PREFIX, SUSPECTS, home_queue

try:
    import pika.exceptions
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("rabbitmq", error.name) from error

DELAY_PREFIX = "zocalo-nb.delay."
#: An unused delay queue disappears after this many ms on top of its delay.
DELAY_QUEUE_LINGER_MS = 600_000
CONFIGURE_HINT = (
    "declare it with 'zocalo-nb rabbitmq configure FILE' (upstream's configure_rabbitmq "
    "YAML), or add ?declare=1 to the URL for development"
)


class BrokerNames:
    """The queues and exchanges known to exist on one connection (forgotten on reconnect)."""

    def __init__(self, settings: Settings, connection: Callable[[], Any]) -> None:
        self.settings, self.connection = settings, connection
        self.queues: set[str] = set()
        self.exchanges: set[str] = set()
        self._probe: Any = None

    def forget(self) -> None:
        """A new connection: nothing is known on it yet."""
        self.queues.clear()
        self.exchanges.clear()
        self._probe = None

    def knows(self, kind: str, name: str) -> bool:
        """True when a send to ``name`` needs no check (safe from any thread: sets are
        read, and only the I/O thread changes them)."""
        return name in (self.queues if kind == "queue" else self.exchanges)

    def _channel(self) -> Any:
        if self._probe is None or not self._probe.is_open:
            self._probe = self.connection().channel()
        return self._probe

    def counts(self, name: str) -> tuple[int, int] | None:
        """(messages ready, consumers) of a queue as the broker says now; None if missing."""
        try:
            answer = self._channel().queue_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as err:
            self._probe = None
            if err.reply_code == 404:
                return None
            raise
        return answer.method.message_count, answer.method.consumer_count

    def require_queue(self, name: str) -> None:
        """The queue exists, or is declared when allowed (``?declare=1``, and always for our
        own ``.suspects`` queues); else TransportError naming the command that creates it."""
        if name in self.queues:
            return
        if self.counts(name) is None:
            if not self.settings.declare and not name.endswith(SUSPECTS):
                raise TransportError(
                    f"queue {name!r} does not exist on RabbitMQ (vhost {self.settings.vhost!r})",
                    hint=CONFIGURE_HINT,
                )
            self._declare_queue(name)
        self.queues.add(name)

    def _declare_queue(self, name: str) -> None:
        arguments: dict[str, Any] = {"x-queue-type": "quorum"}
        if not name.startswith(RABBITMQ_DLQ_PREFIX):
            dead = RABBITMQ_DLQ_PREFIX + home_queue(name)
            self._channel().queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
            arguments.update(
                {
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": dead,
                    "x-delivery-limit": self.settings.delivery_limit,
                }
            )
        self._channel().queue_declare(name, durable=True, arguments=arguments)

    def require_exchange(self, name: str) -> None:
        """A fanout exchange for a topic (declared: a topic nobody listens to is normal,
        unlike a missing queue)."""
        if name not in self.exchanges:
            self._channel().exchange_declare(name, "fanout", durable=True)
            self.exchanges.add(name)

    def delay_exchange(self, milliseconds: int, target: str) -> str:
        """The exchange that delays by ``milliseconds`` into ``target`` (an exchange; ""
        for queues): a fanout into a TTL queue dead-lettering to the target, routing key
        kept."""
        name = f"{DELAY_PREFIX}{target or 'queues'}.{milliseconds}"
        if name not in self.exchanges:
            probe = self._channel()
            probe.exchange_declare(name, "fanout", durable=True)
            probe.queue_declare(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": milliseconds,
                    "x-dead-letter-exchange": target,
                    "x-expires": milliseconds + DELAY_QUEUE_LINGER_MS,
                },
            )
            probe.queue_bind(name, name)
            self.exchanges.add(name)
        return name

    def peek(self, name: str, limit: int | None) -> list[Message]:
        """On the I/O thread: take every message of the queue on a channel of their own and
        hand them all back with one multiple nack (a quorum queue puts returned messages at
        its back: returning all of them, in order, keeps the order); the first ``limit``."""
        if self.counts(name) is None:
            return []
        channel = self.connection().channel()
        sub = Subscription("browse", name, "queue")
        found: list[Message] = []
        last = 0
        try:
            while True:
                method, properties, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                last = method.delivery_tag
                message = delivered(sub, method, properties, body, -1)
                found.append(message._replace(ack_id="", subscription=""))
            if last:
                channel.basic_nack(last, multiple=True, requeue=True)
        finally:
            channel.close()
        deadline = time.monotonic() + 5.0  # returned only once they are back in the queue
        while found and time.monotonic() < deadline:
            back = self.counts(name)
            if back is None or back[0] >= len(found):
                break
            self.connection().sleep(0.02)
        return found if limit is None else found[:limit]
