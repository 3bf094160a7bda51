"""Taps: what the broker carries, into DataFrames, without consuming anyone's queues.

A :class:`Tap` subscribes to topics (lifecycle events, ``transient.status``, any others you
name); its transport threads only append records to bounded buffers. Queues are read by
browsing and by the broker's statistics, never consumed. DataFrames are built on request.

Example::

    tap = Tap(transport)                 # events + service status from now on
    tap.events()                         # lifecycle events
    tap.services()                       # service processes, departed ones included
    tap.queues(["per_image_analysis"])   # depth, consumers, counters, DLQ depth beside
    tap.browse("DLQ.per_image_analysis") # the messages waiting, left in place
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterable, Sequence

import pandas as pd

from zocalo_nb.dispatch.events import EVENTS_TOPIC, unpack
from zocalo_nb.errors import WaitTimeout
from zocalo_nb.monitor import frames
from zocalo_nb.monitor.records import DEFAULT_MAXLEN, Record, RecordBuffer
from zocalo_nb.service.status import STATUS_TOPIC
from zocalo_nb.transport import Message, QueueStats, Subscription, Transport, TransportError
from zocalo_nb.wire.headers import PROBE

PROBE_HEADER = PROBE
#: Where a transport keeps its shared tap (Transport.extensions).
_SHARED = "zocalo_nb.monitor.tap"


class Tap:
    """Buffers events, status and (optionally) other topics' messages (module docstring)."""

    def __init__(
        self,
        transport: Transport,
        *,
        topics: Sequence[str] = (),
        maxlen: int = DEFAULT_MAXLEN,
        events: bool = True,
        status: bool = True,
    ) -> None:
        self.transport = transport
        self.event_buffer = RecordBuffer(maxlen)
        self.status_buffer = RecordBuffer(maxlen)
        self.message_buffer = RecordBuffer(maxlen)
        self._probes: dict[str, threading.Event] = {}
        self._subs: list[Subscription] = []
        if events:
            self._subs.append(transport.subscribe_topic(EVENTS_TOPIC, self._on_events))
        if status:
            self._subs.append(transport.subscribe_topic(STATUS_TOPIC, self._on_status))
        for topic in topics:
            self._subs.append(transport.subscribe_topic(topic, self._on_message))

    @classmethod
    def for_transport(cls, transport: Transport) -> Tap:
        """The shared tap of ``transport`` (started, and made ready, on first use; kept on
        the transport itself, so it goes with it)."""
        with transport.extensions_lock:
            tap = transport.extensions.get(_SHARED)
            if not isinstance(tap, Tap):
                tap = cls(transport)
                tap.ready()
                transport.extensions[_SHARED] = tap
            return tap

    def __repr__(self) -> str:
        return (
            f"<Tap {len(self.event_buffer)} events, {len(self.status_buffer)} status, "
            f"{len(self.message_buffer)} messages>"
        )

    # -- transport threads: append only ----------------------------------------------------
    def _on_events(self, message: Message) -> None:
        probe = message.headers.get(PROBE_HEADER)
        if probe is not None:
            waiting = self._probes.get(probe)
            if waiting is not None:
                waiting.set()
            return
        self.event_buffer.extend(unpack(message.body))

    def _on_status(self, message: Message) -> None:
        if isinstance(message.body, dict):
            self.status_buffer.append({**message.body, "arrived": time.time()})

    def _on_message(self, message: Message) -> None:
        self.message_buffer.append(frames.message_record(message))

    # -- control ---------------------------------------------------------------------------
    def ready(self, timeout: float = 5.0) -> Tap:
        """Return once the broker delivers events to this tap (a probe makes the round trip):
        nothing sent after this is missed."""
        probe = uuid.uuid4().hex
        arrived = self._probes[probe] = threading.Event()
        try:
            deadline = time.monotonic() + timeout
            while not arrived.is_set():
                self.transport.broadcast(EVENTS_TOPIC, [], headers={PROBE_HEADER: probe})
                if arrived.wait(0.2) or time.monotonic() > deadline:
                    break
        finally:
            self._probes.pop(probe, None)
        if not arrived.is_set():
            raise WaitTimeout(
                f"the events topic did not answer within {timeout:g} s",
                what="events topic",
                seconds=timeout,
                hint="check the broker connection (transport.settings)",
            )
        return self

    def close(self) -> None:
        """Stop listening (the buffers stay readable)."""
        for sub in self._subs:
            with contextlib.suppress(TransportError):
                self.transport.unsubscribe(sub)
        self._subs.clear()
        with self.transport.extensions_lock:
            if self.transport.extensions.get(_SHARED) is self:
                del self.transport.extensions[_SHARED]

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- frames ----------------------------------------------------------------------------
    def event_records(self, run: str | None = None) -> list[Record]:
        """The buffered events (of one run), oldest first."""
        records = self.event_buffer.snapshot()
        if run is None:
            return records
        return [r for r in records if r.get("run") == run]

    def events(self, run: str | None = None) -> pd.DataFrame:
        """Lifecycle events as a DataFrame (see :func:`frames.events_frame`)."""
        return frames.events_frame(self.event_records(run))

    def services(self) -> pd.DataFrame:
        """Service processes seen on ``transient.status``: the latest report of each."""
        return frames.services_frame(self.status_buffer.snapshot())

    def request_status(self, wait: float = 0.5) -> None:
        """Ask every runner to report its status now (our ``command``; upstream's services
        ignore it and report at their next tick), and give the answers ``wait`` seconds."""
        from zocalo_nb.service import COMMAND_TOPIC
        from zocalo_nb.service.status import REPORT_STATUS

        self.transport.broadcast(COMMAND_TOPIC, {"command": REPORT_STATUS})
        time.sleep(wait)

    def status_records(self) -> list[Record]:
        return self.status_buffer.snapshot()

    def messages(self) -> pd.DataFrame:
        """Messages seen on the extra ``topics``."""
        return frames.messages_frame(self.message_buffer.snapshot())

    def browse(self, queue: str, *, limit: int | None = None) -> pd.DataFrame:
        """The messages waiting in ``queue``, left in place, as a messages frame."""
        now = time.time()
        found = self.transport.browse(queue, limit=limit)
        return frames.messages_frame(frames.message_record(m, now) for m in found)

    def queues(self, names: Iterable[str] | None = None) -> pd.DataFrame:
        """Depth, consumers and counters of ``names`` (default: the queues in the events
        seen so far, else every queue of the namespace), with each one's ``DLQ.`` depth
        beside it."""
        if names is None:
            names = self._queues_seen() or [
                s.queue for s in self.transport.list_queues(self.transport.name(""))
            ]
        wanted = list(dict.fromkeys(names))
        stats: list[QueueStats] = []
        dead: dict[str, QueueStats] = {}
        for name in wanted:
            stats.append(self.transport.statistics(name))
            dead[stats[-1].queue] = self.transport.statistics(self.transport.dlq(name))
        return frames.queues_frame(stats, dead)

    def _queues_seen(self) -> list[str]:
        prefix = f"/queue/{self.transport.name('')}"
        seen: dict[str, None] = {}
        for record in self.event_buffer.snapshot():
            queue = record.get("queue")
            if isinstance(queue, str) and queue.startswith("/queue/"):
                name = queue.removesuffix(".suspects")
                seen[name[len(prefix) :] if name.startswith(prefix) else name] = None
        return list(seen)
