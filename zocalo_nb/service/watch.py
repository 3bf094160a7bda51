"""Announcing slow handlers: a ``received`` event only for steps still running after a delay.

Fast steps need no "running" state (their ``succeeded`` event carries ``started`` and
``duration``), and skipping the event saves the broker a frame per message. One thread
watches every handler in progress and announces those that take longer than ``delay``; it is
woken only when it has nothing to wait for (not once per message: a wake-up per message cost
the memory:// pipeline a thread switch each).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class SlowWatch:
    """Calls ``announce(item)`` for every item still started-but-not-done after ``delay`` s."""

    def __init__(self, delay: float, announce: Callable[[Any], None]) -> None:
        self.delay = delay
        self.announce = announce
        self._lock = threading.Lock()  # taken directly where no waiting is involved
        self._cond = threading.Condition(self._lock)
        self._items: dict[int, tuple[float, Any]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        #: The thread waits without a deadline (it had nothing in hand): only then does a new
        #: item need to wake it. Waiting for a deadline, it is due before any item started
        #: since (one delay for all), and on waking it looks at what is in hand then.
        self._waiting_for_nothing = False

    def start(self, key: int, item: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.delay, item)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, daemon=True, name="zocalo-nb-slow-watch"
                )
                self._thread.start()
            if self._waiting_for_nothing:
                self._waiting_for_nothing = False  # woken once, however many start now
                self._cond.notify()

    def done(self, key: int) -> None:
        with self._lock:
            self._items.pop(key, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                if not self._items:
                    self._waiting_for_nothing = True
                    self._cond.wait()
                    self._waiting_for_nothing = False
                    continue
                # One delay for all: the first inserted is the first due.
                key, (deadline, item) = next(iter(self._items.items()))
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                del self._items[key]
            self.announce(item)
