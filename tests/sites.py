"""The ``site`` fixture: the same monitoring tests on memory://, ActiveMQ and RabbitMQ."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from tests.brokers import TEST_REDELIVERIES, eventually
from zocalo_nb.config import Settings
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker, Message, Transport, connect


class Site:
    """A broker (memory, ActiveMQ or RabbitMQ) in a namespace of its own."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind, self.url = kind, url
        self.prefix = f"test{uuid.uuid4().hex[:10]}"  # a test namespace (reruns allowed)
        self.broker = (
            MemoryBroker(max_redeliveries=TEST_REDELIVERIES, redelivery_delay=0.2)
            if kind == "memory"
            else None
        )
        self.transports: list[Transport] = []

    def settings(self, prefix: str | None = None, prefetch: int | None = None) -> Settings:
        if self.broker is not None:
            settings = Settings(prefix=prefix or self.prefix, source="test")
            return settings if prefetch is None else replace(settings, prefetch=prefetch)
        assert self.url is not None
        return Settings.build(self.url, prefix=prefix or self.prefix, prefetch=prefetch)

    def connect(self, prefix: str | None = None, prefetch: int | None = None) -> Transport:
        transport = connect(self.settings(prefix, prefetch), broker=self.broker)
        self.transports.append(transport)
        return transport

    def waiting(self, transport: Transport, queue: str) -> list[Message]:
        """The messages waiting in ``queue``, browsed. RabbitMQ refuses to browse a work
        queue (each browse would count as a delivery), so there they are consumed: ask last."""
        if self.kind != "rabbitmq":
            return transport.browse(queue)
        taken: list[Message] = []
        reader = self.connect()
        reader.subscribe(queue, lambda m: (taken.append(m), reader.ack(m)), ack="client")
        time.sleep(0.5)
        assert eventually(lambda: transport.statistics(queue).depth == 0)
        reader.close()
        return taken

    def runner(self, services: Sequence[Service], **options: object) -> ServiceRunner:
        return ServiceRunner(
            services,
            self.settings(),
            broker=self.broker,
            status_interval=0.5,
            **options,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        if self.broker is not None:
            self.broker.close()


@pytest.fixture(params=["memory", "activemq", "rabbitmq"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = None
    if request.param != "memory":
        url = request.getfixturevalue(f"{request.param}_url")
    result = Site(request.param, url)
    yield result
    result.close()
