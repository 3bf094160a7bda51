"""The wire contract in one place: header names, queue naming, event states.

Everything zocalo_nb writes to or reads from a broker is spelled here once: upstream
Zocalo's names (``workflows-recipe``, ``original-destination``, ``dlq-reinjected``), ours
(``zocalo-nb-*``) and the brokers' own. Standard library only; the lowest layer but one.
"""

from __future__ import annotations

from zocalo_nb.wire import headers, queues
from zocalo_nb.wire.events import EVENTS_TOPIC, TERMINAL, EventState

__all__ = ["EVENTS_TOPIC", "TERMINAL", "EventState", "headers", "queues"]
