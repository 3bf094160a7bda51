"""A broker to try things on, in one line: the embedded ``memory://`` broker, or the one in
``ZOCALO_NB_BROKER`` under a fresh test namespace (so nothing lands in production).

Example::

    sb = zocalo_nb.sandbox()
    with sb.runner([my_service]):
        run = zocalo_nb.submit(recipe, transport=sb.transport)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from zocalo_nb.config import Settings, broker_url
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker, Transport, connect


class Sandbox:
    """A transport, and runners on the same broker and namespace."""

    def __init__(self, url: str | None = None, *, prefix: str | None = None) -> None:
        url = url if url is not None else broker_url()
        if url and not url.startswith("memory://"):
            self.broker: MemoryBroker | None = None
            self.settings = Settings.build(url, prefix=prefix or f"test-{uuid.uuid4().hex[:8]}")
        else:
            self.broker = MemoryBroker(redelivery_delay=0.2)
            self.settings = Settings(prefix=prefix or "test", source="sandbox")
        self.transport: Transport = connect(self.settings, broker=self.broker)

    def __repr__(self) -> str:
        return f"<Sandbox {self.settings.redacted_url()}>"

    def runner(self, services: Sequence[Service], **options: Any) -> ServiceRunner:
        """A ServiceRunner for ``services`` on this broker (start it, or use ``with``)."""
        return ServiceRunner(services, self.settings, broker=self.broker, **options)

    def close(self) -> None:
        self.transport.close()
        if self.broker is not None:
            self.broker.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sandbox(url: str | None = None, *, prefix: str | None = None) -> Sandbox:
    """See the module docstring."""
    return Sandbox(url, prefix=prefix)
