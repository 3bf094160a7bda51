"""``stomp://``: a Transport over STOMP 1.2 with stomp.py, for ActiveMQ Classic first.

Upstream's conventions: ``/queue/<prefix>.<name>``, persistent queue sends,
``client-individual`` acks, ``AMQ_SCHEDULED_DELAY`` for delays, ``expires`` for expiry. Ours
on top: an explicit prefetch (``activemq.prefetchSize`` and ``prefetch-count``), TCP_NODELAY
after every (re)connect (stomp.py never sets it; without it ~13% of round trips stall 40 ms),
heart-beats, reconnection with backoff that resubscribes by itself, and errors that name host,
port and where the settings came from, never the password.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import Any

from zocalo_nb.errors import MissingExtra

try:
    import stomp  # the only module that imports stomp.py
    import stomp.exception
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("stomp", error.name) from error

from zocalo_nb.config import Settings
from zocalo_nb.transport.base import (
    AckMode,
    Callback,
    Kind,
    QueueStats,
    Subscription,
    Transport,
    TransportError,
)
from zocalo_nb.transport.message import Message, decode
from zocalo_nb.transport.replies import Receipt, Statistics, queue_stats
from zocalo_nb.transport.sockets import tune
from zocalo_nb.transport.stomp_listener import HidePasscode, Listener
from zocalo_nb.transport.stomp_read import adopt
from zocalo_nb.transport.stomp_tx import Transactions, frame
from zocalo_nb.wire.headers import EXPIRES, PERSISTENT, REDELIVERED, SCHEDULED_DELAY

log = logging.getLogger(__name__)


logging.getLogger("stomp.py").addFilter(HidePasscode())


#: Our ack modes as STOMP ``ack`` headers.
STOMP_ACK_MODES = {"client": "client-individual", "cumulative": "client", "auto": "auto"}


class StompTransport(Transport):
    """A STOMP connection (see module docstring). Callbacks run on stomp.py's receiver thread."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 10.0) -> None:
        super().__init__(settings)
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._listener: Listener | None = None
        self._generation = 0
        self._receipts: dict[str, Receipt] = {}
        self._transactions = Transactions(self._wire)
        self.receipt_timeout = 30.0
        self._closing = False
        self._subs: dict[str, tuple[Subscription, Callback, dict[str, str]]] = {}
        self._browsers: dict[str, tuple[list[Message], threading.Event]] = {}
        self._stats = Statistics(
            self._register,
            lambda destination, headers: self._connection().send(destination, "", headers=headers),
            lambda: f"zocalo-nb-{next(self._ids)}",
        )
        self._last_error = ""
        self._reconnector: threading.Thread | None = None
        self._reconnected = threading.Condition()

    # -- lifecycle -------------------------------------------------------------------------
    def connect(self) -> StompTransport:
        with self._lock:
            if self.is_connected:
                return self
            self._closing = False
            self._open()
        return self

    def _open(self) -> None:
        s = self.settings
        conn = stomp.Connection12(
            [(s.host, s.port)],
            heartbeats=(s.heartbeat, s.heartbeat),
            reconnect_attempts_max=1,
            timeout=self.connect_timeout,
            keepalive=True,
        )
        adopt(conn)  # our quicker receive loop, where this stomp.py has the one it replaces
        if s.tls:
            conn.set_ssl(for_hosts=[(s.host, s.port)], ca_certs=s.ca_certs)
        listener = Listener(self)
        conn.set_listener("zocalo-nb", listener)
        self._last_error = ""
        try:
            conn.connect(s.username, s.password, wait=True, headers={"host": s.host})
        except (stomp.exception.StompException, OSError) as err:
            if getattr(conn.transport, "connection_error", False):
                # stomp.py wakes us on an ERROR frame before it hands the frame to our
                # listener: wait for the broker's reason (e.g. a wrong password).
                listener.error_seen.wait(2.0)
            with contextlib.suppress(Exception):
                conn.disconnect()
            reason = self._last_error or "connection refused or timed out"
            raise TransportError(
                f"cannot connect to STOMP broker {s.host}:{s.port} as {s.username!r} "
                f"(settings from {s.source}): {reason}",
                hint="check that the broker runs ('zocalo-nb broker status') and the "
                "credentials; ZOCALO_NB_BROKER or --broker sets the URL",
            ) from err
        tune(getattr(conn.transport, "socket", None))
        self._conn = conn
        self._listener = listener
        listener.live = True  # from now on a lost connection is reconnected
        self._generation += 1
        for sub, _callback, headers in self._subs.values():
            _send_subscribe(conn, sub, headers)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            conn, self._conn = self._conn, None
            if self._listener is not None:
                self._listener.live = False
        if conn is not None:
            with contextlib.suppress(Exception):
                # With a receipt, stomp.py waits until the broker has processed every frame
                # we sent, so nothing sent just before close() is lost.
                conn.disconnect(receipt=f"bye-{uuid.uuid4().hex[:8]}")
        thread = self._reconnector
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    @property
    def is_connected(self) -> bool:
        listener = self._listener
        return self._conn is not None and listener is not None and listener.live

    def wait_connected(self, timeout: float = 30.0) -> bool:
        """Block until connected (after a lost connection); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._reconnected:
            while not self.is_connected:
                left = deadline - time.monotonic()
                if left <= 0 or self._closing:
                    return self.is_connected
                self._reconnected.wait(min(left, 0.5))
        return True

    def _lost(self) -> None:
        """Called by the listener when the connection drops: reconnect in the background."""
        for waiter in list(self._receipts.values()):
            waiter.fail()  # no receipt will come on a dead connection
        with self._lock:
            if self._closing or (self._reconnector and self._reconnector.is_alive()):
                return
            self._reconnector = threading.Thread(
                target=self._reconnect_loop, name="zocalo-nb-stomp-reconnect", daemon=True
            )
            self._reconnector.start()

    def _reconnect_loop(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                with self._lock:
                    if self._closing:
                        return
                    self._open()
                log.info("reconnected to %s", self.settings.redacted_url())
                with self._reconnected:
                    self._reconnected.notify_all()
                return
            except TransportError as err:
                log.warning("reconnect failed, retrying in %.1f s: %s", delay, err.message)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _connection(self) -> Any:
        # The listener's flag, not stomp.py's is_connected(): that costs a syscall per call.
        conn, listener = self._conn, self._listener
        if conn is None or listener is None or not listener.live:
            raise TransportError(
                f"not connected to {self.settings.redacted_url()}",
                hint="call connect(); after a lost connection wait_connected() waits for "
                "the automatic reconnect",
            )
        return conn

    def _wire(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a stomp.py frame method; socket and protocol errors become TransportError,
        and so does the AttributeError stomp.py raises when another thread closed its socket
        (it sets it to None) in the middle of a send."""
        try:
            return call(*args, **kwargs)
        except (OSError, AttributeError, stomp.exception.StompException) as err:
            raise TransportError(
                f"lost the connection to {self.settings.redacted_url()}: {err!r}",
                hint="it reconnects by itself; nothing uncommitted was applied",
            ) from err

    def _write(self, data: bytes, conn: Any = None) -> None:
        """Write one frame made by :func:`~zocalo_nb.transport.stomp_tx.frame` (as stomp.py
        writes it) straight to the socket, as commits are: stomp.py's own SEND and ACK
        escape each header with four ``str.replace`` calls, sort its listeners and copy the
        frame twice, which made a plain send and ack slower than raw stomp.py's
        (bench_transport). Heart-beats need nothing from it: stomp.py sends one when due,
        whatever else was written."""
        self._wire((conn or self._connection()).transport.send, data)

    # -- primitives ------------------------------------------------------------------------
    def _send(
        self,
        kind: Kind,
        name: str,
        text: str,
        headers: dict[str, str],
        delay: float | None,
        expiration: float | None,
        transaction: str | None,
    ) -> None:
        final = headers  # the transport's own copy (see Transport._send)
        if kind == "queue":
            final[PERSISTENT] = "true"
        if delay:
            final[SCHEDULED_DELAY] = str(int(delay * 1000))
        if expiration:
            final[EXPIRES] = str(int((time.time() + (delay or 0) + expiration) * 1000))
        destination = f"/{kind}/{name}"
        if transaction is not None:  # written with its COMMIT: see Transactions
            self._connection_for(transaction)
            self._transactions.send(transaction, {**final, "destination": destination}, text)
            return
        self._write(frame("SEND", {**final, "destination": destination}, text))

    def _subscribe(
        self, sub: Subscription, callback: Callback, ack: AckMode, prefetch: int
    ) -> None:
        headers = {"ack": STOMP_ACK_MODES[ack]}
        if sub.kind == "queue":
            headers["activemq.prefetchSize"] = str(prefetch)
            headers["prefetch-count"] = str(prefetch)
        self._register(sub, callback, headers)

    def _register(self, sub: Subscription, callback: Callback, headers: dict[str, str]) -> None:
        """Remember a subscription (to renew it after a reconnect) and subscribe now."""
        self._subs[sub.id] = (sub, callback, headers)
        _send_subscribe(self._connection(), sub, headers)

    def unsubscribe(self, subscription: Subscription) -> None:
        if self._subs.pop(subscription.id, None) is not None:
            with contextlib.suppress(TransportError):
                self._connection().unsubscribe(subscription.id)

    def _ack_args(self, message: Message, transaction: str | None) -> tuple[Any, str]:
        generation, _, ack = message.ack_id.partition("|")
        if generation != str(self._generation):
            # The connection it came on is gone, so the broker hands it out again: acking it
            # now must fail, or a transaction would commit outputs without its ack.
            raise TransportError(
                f"message {message.message_id} arrived on an earlier connection",
                hint="nothing to do: the broker redelivers it",
            )
        return self._connection_for(transaction), ack

    def _ack(self, message: Message, transaction: str | None) -> None:
        conn, ack = self._ack_args(message, transaction)
        if transaction is not None:  # held until its own COMMIT: see Transactions
            self._transactions.hold(transaction, True, ack)
            return
        self._write(frame("ACK", {"id": ack}), conn)

    def _nack(self, message: Message, transaction: str | None) -> None:
        conn, ack = self._ack_args(message, transaction)
        if transaction is not None:
            self._transactions.hold(transaction, False, ack)
            return
        self._write(frame("NACK", {"id": ack}), conn)

    def _connection_for(self, transaction: str | None) -> Any:
        """The connection, checking that a transaction began on this same connection."""
        if transaction is not None:
            self._transactions.check(transaction, self._generation)
        return self._connection()

    def _begin(self, transaction: str) -> None:
        """Nothing is written yet: the BEGIN goes out with the COMMIT (see Transactions)."""
        self._connection()
        self._transactions.begun(transaction, self._generation)

    def _commit(self, transaction: str, confirm: bool) -> None:
        """The whole transaction in one write (see Transactions); with ``confirm``, wait
        for the receipt, and start a clean connection if it is refused or does not come."""
        receipt, waiter = "", None
        if confirm:
            receipt, waiter = f"commit-{uuid.uuid4().hex}", Receipt()
            self._receipts[receipt] = waiter
        try:
            self._transactions.commit(
                self._connection_for(transaction),
                transaction,
                {"receipt": receipt} if confirm else {},
            )
            if waiter is not None:
                try:
                    waiter.wait(self.receipt_timeout, transaction)
                except TransportError:
                    # Rejected or unanswered: whether the broker applied it is unknown, and
                    # its acks may still sit on the connection's subscriptions. A new
                    # connection starts clean; the broker hands back what it held.
                    self._drop()
                    raise
        finally:
            if waiter is not None:
                self._receipts.pop(receipt, None)
            self._transactions.forget(transaction)

    def _abort(self, transaction: str) -> None:
        """Nothing of it was written, so nothing is: the broker never heard of it."""
        try:
            self._connection_for(transaction)
        finally:
            self._transactions.forget(transaction)

    def _drop(self) -> None:
        """Close the socket without a goodbye: the broker hands back every message this
        connection holds, and the transport reconnects by itself."""
        conn = self._conn
        log.warning("dropping the connection to %s to start clean", self.settings.redacted_url())
        with contextlib.suppress(Exception):
            conn.transport.disconnect_socket()

    def browse(
        self, queue: str, *, limit: int | None = None, timeout: float = 5.0
    ) -> list[Message]:
        sub_id = f"zocalo-nb-browse-{uuid.uuid4().hex[:8]}"
        found: list[Message] = []
        done = threading.Event()
        self._browsers[sub_id] = (found, done)
        conn = self._connection()
        conn.subscribe(
            f"/queue/{self.name(queue)}", sub_id, ack="auto", headers={"browser": "true"}
        )
        try:
            if not done.wait(timeout):
                raise TransportError(
                    f"browsing {queue} did not finish within {timeout:g} s",
                    hint="the broker may not support browsing (RabbitMQ consumes instead!)",
                )
        finally:
            self._browsers.pop(sub_id, None)
            with contextlib.suppress(Exception):
                conn.unsubscribe(sub_id)
        return found[:limit] if limit is not None else found

    def statistics(self, queue: str, *, timeout: float = 5.0) -> QueueStats:
        replies = self._stats.ask(self.name(queue), timeout)
        return queue_stats(queue, replies[0] if replies else {})  # none: no such queue yet

    def sibling(self) -> StompTransport:
        return StompTransport(self.settings).connect()

    def list_queues(self, prefix: str, *, timeout: float = 5.0) -> list[QueueStats]:
        if not prefix.endswith("."):
            raise TransportError(
                f"queue prefix {prefix!r} must end with '.'", hint='e.g. "DLQ.zocalo."'
            )
        found = [
            queue_stats("/queue/" + str(v.get("destinationName", "")).split("://")[-1], v)
            for v in self._stats.ask(prefix + ">", timeout)
        ]
        return sorted(found, key=lambda s: s.queue)

    # -- receiving -------------------------------------------------------------------------
    def _on_message(self, headers: dict[str, str], body: str) -> None:
        sub_id = headers.get("subscription", "")
        browser = self._browsers.get(sub_id)
        if browser is not None:
            if headers.get("browser") == "end":
                browser[1].set()
            else:
                browser[0].append(self._message(headers, body, sub_id))
            return
        entry = self._subs.get(sub_id)
        if entry is None:
            return
        try:
            entry[1](self._message(headers, body, sub_id))
        except Exception:  # a callback must not kill stomp.py's receiver thread
            log.exception("callback for %s raised", headers.get("destination"))

    def _message(self, headers: dict[str, str], body: str, sub_id: str) -> Message:
        value, is_json = decode(body)
        return Message(
            destination=headers.get("destination", ""),
            body=value,
            headers=dict(headers),
            is_json=is_json,
            redelivered=headers.get(REDELIVERED) == "true",
            delivery_count=None,
            ack_id=f"{self._generation}|{headers.get('ack', '')}",
            subscription=sub_id,
            text=body if isinstance(body, str) else "",
        )


def _send_subscribe(conn: Any, sub: Subscription, headers: dict[str, str]) -> None:
    """SUBSCRIBE with our header set (``ack`` is its own argument in stomp.py)."""
    extra = {k: v for k, v in headers.items() if k != "ack"}
    conn.subscribe(f"/{sub.kind}/{sub.destination}", sub.id, ack=headers["ack"], headers=extra)
