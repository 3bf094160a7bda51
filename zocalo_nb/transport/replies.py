"""Waiting for what a STOMP broker answers: RECEIPT frames, and statistics map messages."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from typing import Any

from zocalo_nb.transport.base import QueueStats, Subscription, TransportError


class Receipt:
    """Waits for one RECEIPT frame (or for the connection to die)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.failed = False
        self.reason = ""

    def arrived(self) -> None:
        self._done.set()

    def fail(self, reason: str = "the connection was lost") -> None:
        self.failed, self.reason = True, reason
        self._done.set()

    def wait(self, timeout: float, transaction: str) -> None:
        if not self._done.wait(timeout):
            self.reason = f"no receipt within {timeout:g} s"
        elif not self.failed:
            return
        raise TransportError(
            f"the broker did not confirm the commit of {transaction}: {self.reason}",
            hint="nothing is known to be stored: the messages it acked are handed back and "
            "come again (our message ids let receivers spot duplicates)",
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


#: Asks ActiveMQ's statistics plugin to end its replies with an empty message.
STATS_END = "ActiveMQ.Statistics.Destination.List.End.With.Null"


class StatisticsRequest:
    """One question to ActiveMQ's statistics plugin and its answers: a map message per
    matching destination, then an empty one (so a queue that does not exist gets only that,
    instead of no answer at all)."""

    def __init__(self, destination: str, reply_queue: str) -> None:
        self.id = uuid.uuid4().hex
        self.destination = f"/queue/ActiveMQ.Statistics.Destination.{destination}"
        self.headers = {
            "reply-to": f"/temp-queue/{reply_queue}",
            "correlation-id": self.id,  # replies carry it: late answers to others are ignored
            STATS_END: "true",
        }
        self.replies: list[dict[str, Any]] = []
        self._arrived = threading.Event()
        self._asked = destination

    def collect(self, message: Any) -> None:
        if message.headers.get("correlation-id") != self.id:
            return
        values = map_message(message.body)
        if values:
            self.replies.append(values)
        else:  # the end marker: everything has arrived
            self._arrived.set()

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        if not self._arrived.wait(timeout):
            raise TransportError(
                f"no statistics for {self._asked} within {timeout:g} s",
                hint="ActiveMQ needs the statisticsBrokerPlugin and the xstream/jettison "
                "jars ('zocalo-nb broker start' sets both up)",
            )
        return self.replies


class Statistics:
    """Questions to ActiveMQ's statistics plugin over one connection: one temporary reply
    queue per connection (gone with it), one question at a time. ``subscribe(sub, callback,
    headers)`` registers the reply queue; ``send(destination, headers)`` asks."""

    def __init__(self, subscribe: Any, send: Any, new_id: Any) -> None:
        self._subscribe, self._send, self._new_id = subscribe, send, new_id
        self._lock = threading.Lock()
        self._reply: Subscription | None = None
        self._request: StatisticsRequest | None = None

    def ask(self, destination: str, timeout: float) -> list[dict[str, Any]]:
        """The plugin's replies for ``destination`` (a name or a wildcard)."""
        with self._lock:
            if self._reply is None:
                sub = Subscription(
                    self._new_id(), f"zocalo-nb.stats.{uuid.uuid4().hex}", "temp-queue"
                )
                self._subscribe(
                    sub, self._collect, {"ack": "auto", "transformation": "jms-map-json"}
                )
                self._reply = sub
            request = self._request = StatisticsRequest(destination, self._reply.destination)
            try:
                self._send(request.destination, request.headers)
                return request.wait(timeout)
            finally:
                self._request = None

    def _collect(self, message: Any) -> None:
        request = self._request
        if request is not None:
            request.collect(message)
