"""The tracker: a service that writes every lifecycle event into the history database.

Run it beside your services (``zocalo-nb service tracker``, database from
``ZOCALO_NB_HISTORY``, retention from ``ZOCALO_NB_RETENTION_DAYS``) or in a notebook::

    tracker = Tracker(History("sqlite:///runs.sqlite"))
    with ServiceRunner([tracker.service()], broker=broker): ...
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from zocalo_nb.dispatch import MessageContext
from zocalo_nb.dispatch.events import EVENTS_TOPIC, unpack
from zocalo_nb.monitor.history import History
from zocalo_nb.monitor.records import Record
from zocalo_nb.service import Service

log = logging.getLogger(__name__)
#: Events kept in memory while the database cannot be written (oldest dropped beyond).
MAX_PENDING = 1_000_000
#: Refused events kept for inspection (``Tracker.rejected``).
MAX_REJECTED = 1000


class Tracker:
    """Writes the events topic into a :class:`History`, in batches (a thread flushes every
    ``flush_every`` seconds or ``batch`` events). ``retention_days`` deletes older ones."""

    def __init__(
        self,
        history: History,
        *,
        batch: int = 1000,
        flush_every: float = 0.2,
        retention_days: float | None = None,
    ) -> None:
        self.history = history
        self.batch, self.flush_every = batch, flush_every
        self.retention_days = retention_days
        self.recorded = 0
        #: Events the database refused (the newest ``MAX_REJECTED``), and how many in all.
        self.rejected: deque[Record] = deque(maxlen=MAX_REJECTED)
        self.rejected_count = 0
        self._pending: list[Record] = []
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="zocalo-nb-track")
        self._thread.start()
        if retention_days is not None:
            history.forget(retention_days)

    def add(self, events: Iterable[Record]) -> None:
        with self._lock:
            self._pending.extend(events)
            if len(self._pending) >= self.batch:
                self._lock.notify()

    def flush(self) -> None:
        """Write everything received so far. While the database cannot be reached, events are
        kept for the next try; an event the database refuses for what it holds is set aside
        (``rejected``, logged) and the rest of its batch is written: one bad event never
        stops the tracker."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            self._write(pending)

    def _write(self, events: list[Record]) -> None:
        try:
            self.recorded += self.history.record(events)
        except sa.exc.OperationalError:  # the database is down or busy: try again later
            with self._lock:
                self._pending[:0] = events[-MAX_PENDING:]
            raise
        except Exception as err:
            if len(events) > 1:  # find the culprit(s) by halves; the rest is written
                half = len(events) // 2
                self._write(events[:half])
                self._write(events[half:])
                return
            self.rejected.append(events[0])
            self.rejected_count += 1
            log.error(
                "history: event set aside, the database refused it: %s",
                str(err).splitlines()[0][:300],
            )

    def close(self) -> None:
        """Stop the flushing thread and write what is left (errors are logged, not raised:
        the services sharing its runner stop anyway)."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=30)
        try:
            self.flush()
        except Exception:
            log.exception(
                "history: %d event(s) not written to %s",
                len(self._pending),
                self.history.redacted_url,
            )

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._closed and len(self._pending) < self.batch:
                    self._lock.wait(self.flush_every)
                closed = self._closed
            try:
                self.flush()
            except Exception:  # keep running: the next flush retries what is new
                log.exception("could not write events to %s", self.history.redacted_url)
            if closed:
                return

    def service(self) -> Service:
        """The tracker as a :class:`Service` on the events topic (stopping it flushes)."""

        def handle(ctx: MessageContext, payload: Any) -> None:
            self.add(unpack(payload))

        return Service(
            "tracker",
            handle,
            topics=(EVENTS_TOPIC,),
            recipe=False,
            close=self.close,
            events=False,  # its own events would come back to it
            description="writes lifecycle events to the history database",
        )
