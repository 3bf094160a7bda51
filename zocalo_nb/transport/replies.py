"""Waiting for what a STOMP broker answers: RECEIPT frames, and statistics map messages."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from zocalo_nb.transport.base import QueueStats, TransportError


class Receipt:
    """Waits for one RECEIPT frame (or for the connection to die)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.failed = False

    def arrived(self) -> None:
        self._done.set()

    def fail(self) -> None:
        self.failed = True
        self._done.set()

    def wait(self, timeout: float, transaction: str) -> None:
        if not self._done.wait(timeout) or self.failed:
            raise TransportError(
                f"the broker did not confirm the commit of {transaction}",
                hint="the connection was lost or the broker is overloaded; nothing is known "
                "to be stored: send again (our message ids let receivers spot duplicates)",
            )


def map_message(body: Any) -> dict[str, Any]:
    """Flatten ActiveMQ's jms-map-json ({"map": {"entry": [...]}}) into a dict."""
    if isinstance(body, str):
        with contextlib.suppress(ValueError):
            body = json.loads(body)
    mapping = body.get("map") if isinstance(body, dict) else None
    entries = mapping.get("entry", []) if isinstance(mapping, dict) else []  # "" when empty
    if isinstance(entries, dict):  # one entry comes without its list
        entries = [entries]
    values: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        key = entry.get("string")
        if isinstance(key, list) and len(key) == 2:
            values[str(key[0])] = key[1]
        elif isinstance(key, str):
            values[key] = next((v for k, v in entry.items() if k != "string"), None)
    return values


def queue_stats(queue: str, values: dict[str, Any]) -> QueueStats:
    """QueueStats from the statistics plugin's values (all zero for an empty reply)."""
    return QueueStats(
        queue,
        int(values.get("size", 0)),
        int(values.get("consumerCount", 0)),
        int(values.get("enqueueCount", 0)),
        int(values.get("dequeueCount", 0)),
    )
