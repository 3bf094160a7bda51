"""Transports: one interface, an in-process broker (``memory://``) and STOMP (``stomp://``).

Example::

    import zocalo_nb
    with zocalo_nb.connect("memory://") as transport:
        ...
    broker = MemoryBroker()                  # several transports on one in-process broker
    a, b = broker.connect(), broker.connect()
"""

from __future__ import annotations

from zocalo_nb.config import Settings
from zocalo_nb.transport.base import (
    Prepared,
    QueueStats,
    Subscription,
    Transport,
    TransportError,
)
from zocalo_nb.transport.memory import MemoryTransport
from zocalo_nb.transport.memory_broker import MemoryBroker
from zocalo_nb.transport.message import Message, RawBody


def connect(
    url_or_settings: str | Settings | None = None, *, broker: MemoryBroker | None = None
) -> Transport:
    """A connected transport for a URL (``memory://``, ``stomp://user:pw@host:61613``) or
    Settings; with nothing given, :meth:`Settings.build` reads the environment.

    ``broker`` shares an in-process broker between ``memory://`` transports.
    """
    if isinstance(url_or_settings, Settings):
        settings = url_or_settings
    else:
        settings = Settings.build(url_or_settings)
    if settings.scheme == "memory":
        return MemoryTransport(settings, broker).connect()
    if settings.scheme == "amqp":
        from zocalo_nb.transport.amqp import AmqpTransport

        return AmqpTransport(settings).connect()
    from zocalo_nb.transport.stomp import StompTransport

    return StompTransport(settings).connect()


__all__ = [
    "MemoryBroker",
    "MemoryTransport",
    "Message",
    "Prepared",
    "QueueStats",
    "RawBody",
    "Settings",
    "Subscription",
    "Transport",
    "TransportError",
    "connect",
]
