"""What the AMQP transport can say about queues without taking from them: dead-letter queue
names, statistics and browsing.

Statistics come from the management API (:mod:`zocalo_nb.transport.rabbitmq_api`) and
passive declares. Browsing fetches and requeues (RabbitMQ has no
browser): the messages are taken on a channel of their own and handed back with one
multiple nack, so they return in their order and none is lost; but each browse counts as
one delivery of each message browsed, so browsing is refused on queues with a delivery
limit (work queues) and used on dead-letter queues (which have none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from zocalo_nb.config import Settings
from zocalo_nb.transport.amqp_names import BrokerNames
from zocalo_nb.transport.base import QueueStats, TransportError
from zocalo_nb.transport.message import Message
from zocalo_nb.transport.rabbitmq_api import ManagementAPI, delivery_limit, queue_stats
from zocalo_nb.wire.queues import RABBITMQ_DLQ_PREFIX

T = TypeVar("T")


class RabbitLooking:
    """The looking half of :class:`~zocalo_nb.transport.amqp.AmqpTransport` (a mixin: the
    transport provides ``settings``, ``api``, ``names``, ``name()`` and ``_call()``)."""

    settings: Settings
    api: ManagementAPI
    names: BrokerNames

    if TYPE_CHECKING:  # provided by the transport (never defined here: the MRO would pick them)

        def name(self, destination: str) -> str: ...

        def _call(self, action: Callable[[], T]) -> T: ...

    def dlq(self, queue: str) -> str:
        """RabbitMQ's rule (upstream's topology): ``dlq.<queue>``."""
        return f"/queue/{RABBITMQ_DLQ_PREFIX}{self.name(queue)}"

    def dead_letter_queues(self) -> list[QueueStats]:
        prefix = self.settings.prefix
        return self.list_queues(
            f"{RABBITMQ_DLQ_PREFIX}{prefix}." if prefix else RABBITMQ_DLQ_PREFIX
        )

    def browse(
        self, queue: str, *, limit: int | None = None, timeout: float = 5.0
    ) -> list[Message]:
        """The messages waiting, taken and handed back in order; refused on a queue with a
        delivery limit."""
        name = self.name(queue)
        info = self.api.find_queue(self.settings.vhost, name)
        if info is None:
            return []
        limit_set = delivery_limit(info)
        if limit_set:
            raise TransportError(
                f"browsing {name!r} would count as a delivery of every message in it, and its "
                f"delivery-limit ({limit_set}) would dead-letter them",
                hint="RabbitMQ has no browser: browse dead-letter queues (no delivery limit), "
                "use statistics() for a work queue's depth",
            )
        return self._call(lambda: self.names.peek(name, limit))

    def statistics(self, queue: str, *, timeout: float = 5.0) -> QueueStats:
        """Messages ready and consumers as the broker says now (a passive declare); unacked,
        enqueued and dequeued from the management API (behind by its statistics interval)."""
        name = self.name(queue)
        return self._stats(self.api.find_queue(self.settings.vhost, name) or {"name": name})

    def list_queues(self, prefix: str, *, timeout: float = 5.0) -> list[QueueStats]:
        """The vhost's queues named ``prefix...`` (from the management API), each counted as
        :meth:`statistics` counts."""
        listed = self.api.queues(self.settings.vhost)
        return [self._stats(i) for i in listed if str(i.get("name", "")).startswith(prefix)]

    def _stats(self, info: dict[str, Any]) -> QueueStats:
        name = str(info["name"])
        return queue_stats(info, self._call(lambda: self.names.counts(name)))
