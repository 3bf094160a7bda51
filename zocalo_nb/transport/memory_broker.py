"""MemoryBroker: an in-process message broker with ActiveMQ's semantics as we configure it.

- queues: competing consumers, round-robin, at most ``prefetch`` unacked per consumer;
- topics: fan-out to the subscribers present when a message is published;
- NACK: redelivered after ``redelivery_delay`` with ``redelivered`` set and a delivery count,
  and moved to ``DLQ.<queue>`` (with ``original-destination``) once delivered
  ``1 + max_redeliveries`` times;
- a consumer that goes away with unacked messages: they are redelivered at once, in order,
  never dead-lettered (as ActiveMQ does);
- transactions: sends and acks take effect together at commit; abort drops the sends and
  leaves acked messages with their consumer (callers nack them, as on ActiveMQ);
- delayed messages, expiry (expired messages are dropped), browse, statistics.

Several :class:`~zocalo_nb.transport.memory.MemoryTransport` objects share one broker, so a
notebook can run a dispatcher, services and a monitor in one kernel. Tests call :meth:`join`
to wait until everything is processed; it re-raises exceptions from callbacks.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from zocalo_nb.errors import WaitTimeout, ZocaloNbError
from zocalo_nb.transport.base import TransportError
from zocalo_nb.wire.headers import ORIGINAL_DESTINATION
from zocalo_nb.wire.queues import DLQ_PREFIX

if TYPE_CHECKING:
    from zocalo_nb.transport.memory import MemoryTransport


@dataclass
class Envelope:
    """A message inside the broker."""

    id: str
    kind: str
    name: str
    text: str
    headers: dict[str, str]
    expires: float | None = None  # epoch seconds
    delivery_count: int = 0
    seq: int = 0


@dataclass
class Consumer:
    """One subscription of one transport."""

    id: str
    transport: MemoryTransport
    callback: Callable[[Any], None]
    kind: str
    name: str
    ack: str
    prefetch: int
    inflight: dict[str, Envelope] = field(default_factory=dict)
    #: The callback runs where the message becomes deliverable (see MemoryTransport).
    handoff: bool = False


@dataclass
class _Queue:
    pending: deque[Envelope] = field(default_factory=deque)
    consumers: list[Consumer] = field(default_factory=list)
    turn: int = 0
    enqueued: int = 0
    dequeued: int = 0


class CallbackFailed(ZocaloNbError):
    """A subscription callback raised; re-raised by :meth:`MemoryBroker.join`."""


class MemoryBroker:
    """An in-process broker shared by memory transports (see module docstring).

    Example::

        broker = MemoryBroker()
        with broker.connect() as a, broker.connect() as b:
            b.subscribe("work", handle)
            a.send("work", {"n": 1})
            broker.join()
    """

    def __init__(self, *, max_redeliveries: int = 5, redelivery_delay: float = 1.0) -> None:
        self.max_redeliveries = max_redeliveries
        self.redelivery_delay = redelivery_delay
        #: Taken directly (a C call) wherever nothing waits: a Condition's own ``with`` and
        #: ``notify_all`` are Python code, which cost the memory:// pipeline about a tenth of
        #: its time when every send, ack and delivery went through them.
        self._lock = lock = threading.RLock()
        #: What join() waits on: notified only while a join() waits (``_joining``).
        self._cond = threading.Condition(lock)
        self._joining = 0
        #: What the timer thread waits on (the same lock): woken for a new timer or close
        #: only, not by every send, ack and delivery as ``_cond``'s waiters are.
        self._timer_cond = threading.Condition(lock)
        self._queues: dict[str, _Queue] = {}
        self._topics: dict[str, list[Consumer]] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count(1)
        self._busy = 0
        self._errors: list[BaseException] = []
        self._scheduler: threading.Thread | None = None
        self._closed = False

    def connect(self, prefix: str = "test") -> MemoryTransport:
        """A new, connected transport on this broker."""
        from zocalo_nb.config import Settings
        from zocalo_nb.transport.memory import MemoryTransport

        return MemoryTransport(Settings(prefix=prefix, source="MemoryBroker"), self).connect()

    def close(self) -> None:
        """Stop the scheduler thread; messages still held are discarded."""
        with self._lock:
            self._closed = True
            self._wake()
            self._timer_cond.notify_all()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)

    # -- entering messages -----------------------------------------------------------------
    def publish(self, envelope: Envelope, delay: float | None = None) -> None:
        """Route a message now, or after ``delay`` seconds."""
        if delay and delay > 0:
            self._schedule(delay, lambda: self.publish(envelope))
            return
        with self._lock:
            envelope.seq = next(self._seq)
            if envelope.kind == "topic":
                for consumer in list(self._topics.get(envelope.name, ())):
                    self._deliver(consumer, replace(envelope, delivery_count=1))
            else:
                queue = self._queues.get(envelope.name)
                if queue is None:  # (not setdefault: that makes a _Queue every time)
                    queue = self._queues[envelope.name] = _Queue()
                queue.pending.append(envelope)
                queue.enqueued += 1
                self._pump(envelope.name)
            self._wake()

    # -- consumers -------------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        with self._lock:
            if consumer.kind == "topic":
                self._topics.setdefault(consumer.name, []).append(consumer)
            else:
                self._queues.setdefault(consumer.name, _Queue()).consumers.append(consumer)
                self._pump(consumer.name)

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detach a consumer; its unacked messages are redelivered at once, in order."""
        with self._lock:
            if consumer.kind == "topic":
                subscribers = self._topics.get(consumer.name, [])
                if consumer in subscribers:
                    subscribers.remove(consumer)
                return
            queue = self._queues.get(consumer.name)
            if queue is None or consumer not in queue.consumers:
                return
            queue.consumers.remove(consumer)
            returned = sorted(consumer.inflight.values(), key=lambda e: e.seq)
            consumer.inflight.clear()
            queue.pending.extendleft(reversed(returned))
            self._pump(consumer.name)
            self._wake()

    def ack(self, consumer: Consumer, ack_id: str) -> None:
        with self._lock:
            taken = 1
            if consumer.ack == "cumulative":
                # STOMP "client" mode: every message this consumer received before it too
                # (inflight keeps dispatch order).
                earlier = (
                    list(consumer.inflight).index(ack_id) if ack_id in consumer.inflight else 0
                )
                for key in list(consumer.inflight)[:earlier]:
                    del consumer.inflight[key]
                taken += earlier
            self._take(consumer, ack_id)
            self._queues[consumer.name].dequeued += taken
            self._pump(consumer.name)
            self._wake()

    def nack(self, consumer: Consumer, ack_id: str) -> None:
        with self._lock:
            envelope = self._take(consumer, ack_id)
            self._queues[consumer.name].dequeued += 1  # ActiveMQ counts each NACK so
            if envelope.delivery_count > self.max_redeliveries:
                self._dead_letter(envelope)
            else:
                self._schedule(self.redelivery_delay, lambda: self._requeue(envelope))
            self._pump(consumer.name)
            self._wake()

    def holds(self, consumer: Consumer, ack_id: str) -> bool:
        """True if ``consumer`` holds the unacked message ``ack_id``."""
        with self._lock:
            return ack_id in consumer.inflight

    def _take(self, consumer: Consumer, ack_id: str) -> Envelope:
        envelope = consumer.inflight.pop(ack_id, None)
        if envelope is None:
            raise TransportError(
                f"message {ack_id} is not held unacknowledged by subscription {consumer.id}",
                hint="ack/nack each message once, on the transport that received it, "
                "and only for subscriptions with ack='client'",
            )
        return envelope

    def _requeue(self, envelope: Envelope) -> None:
        with self._lock:
            queue = self._queues.setdefault(envelope.name, _Queue())
            queue.pending.append(envelope)
            queue.enqueued += 1  # and each redelivery as a new enqueue
            self._pump(envelope.name)
            self._wake()

    def _dead_letter(self, envelope: Envelope) -> None:
        headers = dict(envelope.headers)
        headers[ORIGINAL_DESTINATION] = f"/queue/{envelope.name}"
        self.publish(
            Envelope(envelope.id, "queue", DLQ_PREFIX + envelope.name, envelope.text, headers)
        )

    # -- dispatching -----------------------------------------------------------------------
    def _pump(self, name: str) -> None:
        """Hand pending messages of queue ``name`` to consumers with room (lock held)."""
        queue = self._queues[name]
        now = time.time()
        while queue.pending:
            ready = [c for c in queue.consumers if c.ack == "auto" or len(c.inflight) < c.prefetch]
            if not ready:
                return
            envelope = queue.pending.popleft()
            if envelope.expires is not None and envelope.expires < now:
                continue  # expired: dropped, as our ActiveMQ configuration does
            consumer = ready[queue.turn % len(ready)]
            queue.turn += 1
            envelope.delivery_count += 1
            if consumer.ack != "auto":
                consumer.inflight[envelope.id] = envelope
            else:
                queue.dequeued += 1
            self._deliver(consumer, envelope)

    def _deliver(self, consumer: Consumer, envelope: Envelope) -> None:
        if envelope.expires is not None and envelope.expires < time.time():
            return
        self._busy += 1
        consumer.transport.enqueue_delivery(consumer, envelope)

    def delivered(self, error: BaseException | None = None) -> None:
        """Called by a transport after a callback returned (or raised ``error``)."""
        with self._lock:
            self._busy -= 1
            if error is not None:
                self._errors.append(error)
            self._wake()

    # -- timers ----------------------------------------------------------------------------
    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), action))
            if self._scheduler is None:
                self._scheduler = threading.Thread(
                    target=self._run_timers, name="zocalo-nb-memory-timers", daemon=True
                )
                self._scheduler.start()
            self._wake()  # join() counts timers as work
            self._timer_cond.notify_all()

    def _run_timers(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._timers:
                    self._timer_cond.wait()
                    continue
                due = self._timers[0][0] - time.monotonic()
                if due > 0:
                    self._timer_cond.wait(due)
                    continue
                _, _, action = heapq.heappop(self._timers)
                action()
                self._wake()

    def _wake(self) -> None:
        """Tell a waiting join() that something changed (lock held)."""
        if self._joining:
            self._cond.notify_all()

    @property
    def lock(self) -> threading.RLock:
        """Held while several operations must happen as one (transaction commits)."""
        return self._lock

    # -- inspection ------------------------------------------------------------------------
    def snapshot(self, name: str) -> list[Envelope]:
        """The messages in queue ``name`` (waiting or unacked), oldest first."""
        with self._lock:
            queue = self._queues.get(name)
            if queue is None:
                return []
            held = [e for c in queue.consumers for e in c.inflight.values()]
            return sorted([*queue.pending, *held], key=lambda e: e.seq)

    def queue_names(self, prefix: str = "") -> list[str]:
        """The queues that exist (were sent to or consumed from) whose names start so."""
        with self._lock:
            return sorted(n for n in self._queues if n.startswith(prefix))

    def stats(self, name: str) -> tuple[int, int, int, int]:
        """(depth, consumers, enqueued, dequeued) of queue ``name``."""
        with self._lock:
            queue = self._queues.get(name) or _Queue()
            depth = len(queue.pending) + sum(len(c.inflight) for c in queue.consumers)
            return depth, len(queue.consumers), queue.enqueued, queue.dequeued

    def join(self, timeout: float = 10.0, *, include_delayed: bool = True) -> None:
        """Wait until every deliverable message is processed and acked; re-raise callback errors.

        With ``include_delayed`` (the default) pending timers (delays, redeliveries) count
        as work too. Raises CallbackFailed for the first callback exception, TimeoutError if
        the broker does not go quiet in time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._quiet(include_delayed):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(
                        f"memory broker still busy after {timeout:g} s",
                        hint="a message keeps being redelivered, or a callback hangs",
                        what="memory broker",
                        seconds=timeout,
                    )
                self._joining += 1
                try:
                    self._cond.wait(min(left, 0.05))
                finally:
                    self._joining -= 1
            if self._errors:
                errors, self._errors = self._errors, []
                raise CallbackFailed(
                    f"{len(errors)} callback(s) raised; first: {errors[0]!r}",
                    hint="see the chained exception for the traceback",
                ) from errors[0]

    def _quiet(self, include_delayed: bool) -> bool:
        if self._busy or (include_delayed and self._timers):
            return False
        for queue in self._queues.values():
            if any(c.inflight for c in queue.consumers):
                return False
            if queue.pending and queue.consumers:
                return False
        return True
