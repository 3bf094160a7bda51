"""The ``site`` fixture: the same monitoring tests on memory:// and on ActiveMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from tests.brokers import TEST_REDELIVERIES
from zocalo_nb.config import Settings
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker, Transport, connect


class Site:
    """A broker (memory or ActiveMQ) in a namespace of its own: transports and runners."""

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


@pytest.fixture(params=["memory", "activemq"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = request.getfixturevalue("activemq_url") if request.param == "activemq" else None
    result = Site(request.param, url)
    yield result
    result.close()
