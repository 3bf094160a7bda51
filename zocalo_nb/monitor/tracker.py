"""The tracker: a service that writes every lifecycle event into the history database.

Run it beside your services (``zocalo-nb service tracker``, database from
``ZOCALO_NB_HISTORY``, retention from ``ZOCALO_NB_RETENTION_DAYS``) or in a notebook::

    tracker = Tracker(History("sqlite:///runs.sqlite"))
    with ServiceRunner([tracker.service()], broker=broker): ...
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from zocalo_nb.dispatch import MessageContext
from zocalo_nb.dispatch.events import EVENTS_TOPIC, unpack
from zocalo_nb.monitor.history import History
from zocalo_nb.monitor.records import Record
from zocalo_nb.service import Service

log = logging.getLogger(__name__)
#: Events kept in memory while the database cannot be written (oldest dropped beyond).
MAX_PENDING = 1_000_000


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
        """Write everything received so far (kept for the next try if the database fails)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            self.recorded += self.history.record(pending)
        except Exception:
            with self._lock:
                self._pending[:0] = pending[-MAX_PENDING:]
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=30)
        self.flush()

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


def tracker_service() -> Service:
    """Entry point: a tracker writing to ``ZOCALO_NB_HISTORY`` (default: SQLite in
    ``~/.zocalo-nb``), keeping ``ZOCALO_NB_RETENTION_DAYS`` days when set."""
    days = os.environ.get("ZOCALO_NB_RETENTION_DAYS")
    return Tracker(History(), retention_days=float(days) if days else None).service()
