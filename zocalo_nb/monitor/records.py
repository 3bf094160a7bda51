"""A bounded buffer that transport threads append records to; frames are built on request."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

Record = dict[str, Any]
#: Records a tap keeps by default (per buffer); older ones are dropped first.
DEFAULT_MAXLEN = 100_000


class RecordBuffer:
    """The newest ``maxlen`` records. ``append`` is all a transport thread does (O(1));
    :meth:`snapshot` copies them for building a DataFrame in the caller's thread."""

    def __init__(self, maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            from zocalo_nb.errors import InvalidArgument

            raise InvalidArgument(
                f"maxlen must be at least 1, not {maxlen}",
                hint="e.g. 100_000",
                name="maxlen",
                value=maxlen,
            )
        self._items: deque[Record] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.appended = 0

    @property
    def maxlen(self) -> int:
        return self._items.maxlen or 0

    @property
    def dropped(self) -> int:
        """Records pushed out by newer ones since the start."""
        return self.appended - len(self._items)

    def append(self, record: Record) -> None:
        with self._lock:
            self._items.append(record)
            self.appended += 1

    def extend(self, records: list[Record]) -> None:
        with self._lock:
            self._items.extend(records)
            self.appended += len(records)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<RecordBuffer {len(self)}/{self.maxlen} records, {self.dropped} dropped>"
