"""Service status in upstream's format, broadcast on ``transient.status``."""

from __future__ import annotations

import os
import socket
import threading
import time
from enum import IntEnum
from typing import Any

from zocalo_nb._version import __version__

STATUS_TOPIC = "transient.status"
#: Our command (on the ``command`` topic) asking every runner to report its status now, not
#: at its next 6 s tick: how a services panel opened in a notebook lists them at once.
#: Upstream's services ignore commands they do not know.
REPORT_STATUS = "zocalo-nb-report-status"
#: Status messages expire after this many seconds, as upstream's do.
STATUS_EXPIRY = 15.0
#: Broadcast at least this often (upstream: every 6 s) and on every change.
STATUS_INTERVAL = 6.0


class ServiceStatus(IntEnum):
    """Upstream's status codes."""

    NEW = 0
    STARTING = 1
    IDLE = 2
    TIMER = 3
    PROCESSING = 4
    SHUTDOWN = 5
    END = 6
    ERROR = 7


#: Upstream's descriptions (workflows.services.common_service.Status), word for word.
TEXT = {
    ServiceStatus.NEW: "constructing",
    ServiceStatus.STARTING: "starting",
    ServiceStatus.IDLE: "idle",
    ServiceStatus.TIMER: "timer event",
    ServiceStatus.PROCESSING: "processing",
    ServiceStatus.SHUTDOWN: "shutting down",
    ServiceStatus.END: "shutdown",
    ServiceStatus.ERROR: "error",
}


def host_id() -> str:
    """Upstream's host id: the reversed FQDN and the pid (``org.example.node1.4242``)."""
    return ".".join(reversed(socket.getfqdn().split("."))) + f".{os.getpid()}"


class Utilisation:
    """Fraction of recent time spent in each status, as upstream reports it."""

    def __init__(self, period: float = STATUS_INTERVAL) -> None:
        self.period = period
        self._lock = threading.Lock()
        self._since = time.monotonic()
        self._status = ServiceStatus.NEW
        self._spent: dict[int, float] = {}

    def update(self, status: ServiceStatus) -> None:
        with self._lock:
            now = time.monotonic()
            self._spent[self._status] = self._spent.get(self._status, 0.0) + now - self._since
            self._since, self._status = now, status

    def report(self) -> dict[int, float]:
        with self._lock:
            now = time.monotonic()
            spent = dict(self._spent)
            spent[self._status] = spent.get(self._status, 0.0) + now - self._since
            total = sum(spent.values()) or 1.0
            self._spent, self._since = {}, now
            return {int(k): round(v / total, 3) for k, v in spent.items() if v > 0}


def status_message(
    host: str, status: ServiceStatus, service: str, serviceclass: str, utilisation: Utilisation
) -> dict[str, Any]:
    """The status body upstream's monitors read."""
    return {
        "host": host,
        "status": int(status),
        "statustext": TEXT[status],
        "service": service,
        "serviceclass": serviceclass,
        "utilization": utilisation.report(),
        "workflows": f"zocalo_nb {__version__}",
    }
