"""Services: long-running consumers that each do one step, run by a ServiceRunner."""

from __future__ import annotations

from zocalo_nb.dispatch.events import EVENTS_TOPIC
from zocalo_nb.service.processing import ATTEMPT, REDELIVERIES, Processor
from zocalo_nb.service.runner import COMMAND_TOPIC, ServiceRunner
from zocalo_nb.service.service import HandlerTimeout, Reject, Service
from zocalo_nb.service.status import STATUS_TOPIC, ServiceStatus

__all__ = [
    "ATTEMPT",
    "COMMAND_TOPIC",
    "EVENTS_TOPIC",
    "REDELIVERIES",
    "STATUS_TOPIC",
    "HandlerTimeout",
    "Processor",
    "Reject",
    "Service",
    "ServiceRunner",
    "ServiceStatus",
]
