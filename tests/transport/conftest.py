"""The ``harness`` fixture runs each contract test on memory://, ActiveMQ and RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import TEST_REDELIVERIES
from tests.sites import Site
from zocalo_nb.transport import Transport


class Harness(Site):
    """A Site whose transports default to a prefetch of 1 (the contract tests count on it)."""

    redeliveries = TEST_REDELIVERIES

    def connect(self, prefix: str | None = None, prefetch: int | None = 1) -> Transport:
        return super().connect(prefix, prefetch)


@pytest.fixture(params=["memory", "activemq", "rabbitmq"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    url = None
    if request.param != "memory":
        url = request.getfixturevalue(f"{request.param}_url")
    result = Harness(request.param, url)
    yield result
    result.close()
