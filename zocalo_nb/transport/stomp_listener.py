"""What stomp.py calls back on a StompTransport's connection, and its log filter."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zocalo_nb.transport.stomp import StompTransport

log = logging.getLogger("zocalo_nb.transport.stomp")
#: How many of the negotiated intervals stomp.py waits for a frame before it drops the
#: connection (its ``heart_beat_receive_scale``, which we leave at its default).
HEARTBEAT_GRACE = 1.5


class HidePasscode(logging.Filter):
    """stomp.py logs every frame it sends at debug level, CONNECT's ``passcode`` included
    (its own masking misses ``passcode:secret``): hide the value before any handler sees it."""

    _PASSCODE = re.compile(r"(passcode['\"]?\s*[:=,]\s*['\"]?)[^'\"\s,}\\]+")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "passcode" in text:
            record.msg, record.args = self._PASSCODE.sub(r"\1***", text), ()
        return True


class Listener:
    """stomp.py's callbacks (it calls the ``on_*`` methods a listener has) for one
    connection: messages, receipts, errors and the loss of the connection."""

    def __init__(self, transport: StompTransport) -> None:
        self.transport = transport
        self.live = False
        self.error_seen = threading.Event()

    def on_message(self, frame: Any) -> None:
        self.transport._on_message(frame.headers, frame.body)

    def on_receipt(self, frame: Any) -> None:
        waiter = self.transport._receipts.get(frame.headers.get("receipt-id", ""))
        if waiter is not None:
            waiter.arrived()

    def on_error(self, frame: Any) -> None:
        message = frame.headers.get("message", "") or str(frame.body)[:200]
        self.transport._last_error = message
        self.error_seen.set()
        log.warning("broker error: %s", message)
        waiter = self.transport._receipts.get(frame.headers.get("receipt-id", ""))
        if waiter is not None:  # the frame that asked for a receipt was refused
            waiter.fail(message)

    def on_heartbeat_timeout(self) -> None:
        # stomp.py calls this on every listener without asking whether it has one (a missing
        # method ended its heartbeat thread with a traceback). It has closed the socket
        # already, and on_disconnected, called from there, hands the loss to the transport.
        log.warning(
            "the broker sent nothing for %.1f heartbeat intervals: connection dropped",
            HEARTBEAT_GRACE,
        )

    def on_disconnected(self) -> None:
        if self.live:
            self.live = False
            self.transport._lost()
