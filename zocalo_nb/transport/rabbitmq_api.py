"""RabbitMQ's management HTTP API, as much as the transport and the topology need.

Example::

    api = ManagementAPI.for_settings(settings)
    api.queues("zocalo")                 # every queue of the vhost, with counters
    api.put(f"queues/zocalo/{name}", {"durable": True, "arguments": {...}})
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from zocalo_nb.config import Settings
from zocalo_nb.transport.base import QueueStats, TransportError
from zocalo_nb.wire.queues import DELAYED_EXCHANGE, DELAYED_EXCHANGE_TYPE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManagementAPI:
    """A client of ``http://host:port/api`` with basic authentication."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> ManagementAPI:
        return cls(
            settings.host,
            settings.management_port,
            settings.username or "guest",
            settings.password or "guest",
        )

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """The decoded JSON answer (None when empty); TransportError naming the path."""
        data = None if body is None else json.dumps(body).encode()
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            f"http://{self.host}:{self.port}/api/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                text = answer.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:300]
            raise TransportError(
                f"RabbitMQ management API {method} /api/{path}: HTTP {err.code} {detail}",
                hint="check the user's permissions and tags (administrator or monitoring)",
            ) from err
        except OSError as err:
            raise TransportError(
                f"RabbitMQ management API at {self.host}:{self.port} unreachable: {err}",
                hint="enable the rabbitmq_management plugin, or give ?management=PORT in the URL",
            ) from err
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def queues(self, vhost: str) -> list[dict[str, Any]]:
        answer = self.get(f"queues/{quote(vhost, safe='')}")
        return list(answer or [])

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.get(f"queues/{quote(vhost, safe='')}/{quote(name, safe='')}")
        return answer

    def find_queue(self, vhost: str, name: str) -> dict[str, Any] | None:
        """The queue's description, or None when the vhost has no such queue."""
        try:
            return self.queue(vhost, name)
        except TransportError as err:
            if "HTTP 404" in err.message:
                return None
            raise

    def has_delayed_exchange(self, vhost: str) -> bool:
        """True when the vhost has upstream's ``delayed`` exchange of the delayed-message
        plugin's type (False too when the API does not answer)."""
        try:
            info = self.get(f"exchanges/{quote(vhost, safe='')}/{DELAYED_EXCHANGE}")
        except TransportError as err:
            log.debug("no delayed-message exchange (%s): delays via TTL queues", err.message)
            return False
        return bool((info or {}).get("type") == DELAYED_EXCHANGE_TYPE)


def queue_stats(info: dict[str, Any], now: tuple[int, int] | None = None) -> QueueStats:
    """Our counters from the API's description of a queue (its statistics lag by the broker's
    collection interval, 5 s by default); ``now``, (messages ready, consumers) as the broker
    says at this moment (a passive declare), replaces the lagging depth and consumers."""
    stats = info.get("message_stats") or {}
    depth, consumers = int(info.get("messages") or 0), int(info.get("consumers") or 0)
    if now is not None:
        depth = now[0] + int(info.get("messages_unacknowledged") or 0)
        consumers = now[1]
    return QueueStats(
        queue=f"/queue/{info['name']}",
        depth=depth,
        consumers=consumers,
        enqueued=int(stats.get("publish") or 0),
        dequeued=int(stats.get("ack") or 0) + int(stats.get("get_no_ack") or 0),
    )


def delivery_limit(info: dict[str, Any]) -> int | None:
    """A queue's delivery limit: its own argument, else its policy's; None without one."""
    found = (info.get("arguments") or {}).get("x-delivery-limit") or (
        info.get("effective_policy_definition") or {}
    ).get("delivery-limit")
    return int(found) if found else None
