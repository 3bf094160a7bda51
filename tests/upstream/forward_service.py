"""An upstream python-workflows CommonService that forwards recipe messages, started with
upstream's own service starter (``workflows.contrib.start_service``).

python -m tests.upstream.forward_service QUEUE --stomp-host ... (upstream's options)
python -m tests.upstream.forward_service QUEUE --rabbit-host ... (PikaTransport)

Each message is handled as upstream services do: begin a transaction, ack, send onward,
commit; a payload with ``"reject": true`` is nacked (the broker dead-letters it after its
redeliveries). Used by interop tests and benchmarks/bench_pipeline.py as the upstream baseline.

With ``ZOCALO_NB_BENCH_MARK=<file of 8 bytes>`` the service writes ``time.perf_counter()`` into
that file after every commit (a shared mapping, well under a microsecond): the benchmark
reads when the step committed its last message (bench_pipeline.CommitMark).
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
import time

import workflows.recipe
import workflows.services
from workflows.contrib.start_service import ServiceStarter
from workflows.services.common_service import CommonService

QUEUE = "upstream.forward"
#: Names the file the time of each commit is written to (see the module docstring).
MARK_ENV = "ZOCALO_NB_BENCH_MARK"


def commit_marker(path: str | None) -> mmap.mmap | None:
    """The first 8 bytes of ``path`` mapped for writing (None without a path)."""
    if not path:
        return None
    with open(path, "r+b") as file:
        return mmap.mmap(file.fileno(), 8)


_TIME = struct.Struct("d")


class UpstreamForward(CommonService):
    """Forward every recipe message to the next step, transactionally."""

    _service_name = "Upstream forward"
    _logger_name = "upstream.forward"

    def initializing(self) -> None:
        self._mark = commit_marker(os.environ.get(MARK_ENV))
        workflows.recipe.wrap_subscribe(self._transport, QUEUE, self.forward, acknowledgement=True)

    def forward(self, rw, header, message) -> None:  # type: ignore[no-untyped-def]
        if isinstance(message, dict) and message.get("reject"):
            # as upstream services reject what they cannot handle: the broker redelivers,
            # then dead-letters it
            self._transport.nack(header)
            return
        txn = self._transport.transaction_begin(subscription_id=header["subscription"])
        self._transport.ack(header, transaction=txn)
        rw.send(message, transaction=txn)
        self._transport.transaction_commit(txn)
        if self._mark is not None:
            _TIME.pack_into(self._mark, 0, time.perf_counter())


def main() -> None:
    global QUEUE
    QUEUE = sys.argv[1]
    known = workflows.services.get_known_services  # fills upstream's registry cache
    known()
    known.cache["UpstreamForward"] = lambda: UpstreamForward  # type: ignore[attr-defined]
    options = sys.argv[2:]
    transport = (
        "PikaTransport" if any(o.startswith("--rabbit") for o in options) else "StompTransport"
    )
    ServiceStarter().run(
        ["-s", "UpstreamForward", "-t", transport, *options],
        program_name="upstream_forward",
    )


if __name__ == "__main__":
    main()
