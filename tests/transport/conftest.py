"""The ``harness`` fixture runs each contract test on memory:// and on ActiveMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.brokers import TEST_REDELIVERIES
from zocalo_nb.config import Settings
from zocalo_nb.transport import MemoryBroker, Transport, connect


class Harness:
    """Connected transports on one broker, in a namespace of their own."""

    def __init__(self, kind: str, url: str | None, broker: MemoryBroker | None) -> None:
        self.kind = kind
        self.url = url
        self.broker = broker
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.redeliveries = TEST_REDELIVERIES
        self.transports: list[Transport] = []

    def connect(self, prefix: str | None = None, prefetch: int = 1) -> Transport:
        if self.broker is not None:
            settings = Settings(prefix=prefix or self.prefix, prefetch=prefetch, source="test")
            transport = connect(settings, broker=self.broker)
        else:
            assert self.url is not None
            settings = Settings.build(self.url, prefix=prefix or self.prefix, prefetch=prefetch)
            transport = connect(settings)
        self.transports.append(transport)
        return transport

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        if self.broker is not None:
            self.broker.close()


@pytest.fixture(params=["memory", "activemq"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        broker = MemoryBroker(max_redeliveries=TEST_REDELIVERIES, redelivery_delay=0.2)
        result = Harness("memory", None, broker)
    else:
        result = Harness("activemq", request.getfixturevalue("activemq_url"), None)
    yield result
    result.close()
