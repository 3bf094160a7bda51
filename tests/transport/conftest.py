"""The ``harness`` fixture runs each contract test on memory:// and on ActiveMQ."""

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


@pytest.fixture(params=["memory", "activemq"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    url = request.getfixturevalue("activemq_url") if request.param == "activemq" else None
    result = Harness(request.param, url)
    yield result
    result.close()
