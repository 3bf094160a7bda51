"""ServiceRunner: hosts one or many services with N worker threads on one connection.

In a notebook it runs in the background (``start()``/``stop()`` or ``with``); from the CLI
``run()`` blocks until SIGTERM/SIGINT or an upstream-format shutdown command on the
``command`` topic. Stopping is graceful: workers finish the batch in hand, then the
connection closes and the broker hands any message not yet started to another consumer.

Status goes out on ``transient.status`` in upstream's format every 6 s and on every change,
so upstream's monitors see these services.

Example::

    broker = MemoryBroker()
    with ServiceRunner([spotfinder], "memory://", broker=broker, workers=2):
        submit(recipe, transport=broker.connect())
        broker.join()
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

from zocalo_nb.config import Settings
from zocalo_nb.errors import InvalidArgument
from zocalo_nb.service.policies import CrashPolicy, DeadLetters
from zocalo_nb.service.processing import Processor
from zocalo_nb.service.service import Service
from zocalo_nb.service.status import (
    REPORT_STATUS,
    STATUS_EXPIRY,
    STATUS_INTERVAL,
    STATUS_TOPIC,
    ServiceStatus,
    Utilisation,
    host_id,
    status_message,
)
from zocalo_nb.transport import MemoryBroker, Message, Transport, TransportError, connect

log = logging.getLogger(__name__)
COMMAND_TOPIC = "command"
_STOP = object()
#: Batches each worker's subscription may hold unacked, for services that take messages in
#: batches from a broker over the network: with two, the next batch is on its way while one
#: is handled. With one, every worker sat idle for its commit's round trip and the broker's
#: dispatch of the next batch (ActiveMQ, 5,000 messages: 2,913 -> 3,868 msg/s). A worker
#: killed with -9 leaves at most this many batches to be redelivered (suspects). See
#: prefetch_for for where one batch is held.
PREFETCH_BATCHES = 2


def prefetch_for(batch: int, in_process: bool) -> int:
    """What one worker's subscription may hold unacked. One message for a service that takes
    one at a time (jobs: minutes or hours each, unacked while they run), or a second job
    would wait behind a running one while another runner sat idle. One batch on an
    in-process broker (memory://): there is no round trip to hide, and the batch waiting
    only kept a second worker contending for the GIL (2 workers: 2,032-2,449 against
    2,705-3,952 msg/s). Else PREFETCH_BATCHES batches."""
    if batch == 1:
        return 1
    return batch if in_process else PREFETCH_BATCHES * batch


#: Seconds a runner must stay idle before "idle" is announced (upstream waits 0.5 s too).
IDLE_SETTLE = 0.5


class ServiceRunner:
    """Runs services (see module docstring). ``batch`` messages share one transaction.

    ``workers``: threads handling messages. More than one pays for handlers that wait (jobs,
    I/O); handlers that compute share one interpreter's GIL, and on ``memory://``, where the
    broker shares it too, two such workers ran at a third to nine tenths of one's rate
    (docs/memory-broker-speed.md). Processes on a real broker scale past one core.

    ``announce_after``: a ``received`` event is broadcast for handlers still running after
    this many seconds (0: for every message, at once).
    """

    def __init__(
        self,
        services: Sequence[Service],
        url_or_settings: str | Settings | None = None,
        *,
        broker: MemoryBroker | None = None,
        workers: int = 1,
        batch: int = 10,
        events: bool = True,
        announce_after: float = 0.5,
        status_interval: float = STATUS_INTERVAL,
        crashes: Callable[[Transport, DeadLetters], CrashPolicy] | None = None,
    ) -> None:
        if not services:
            raise InvalidArgument(
                "no services to run", hint="pass at least one Service", name="services"
            )
        if workers < 1 or batch < 1:
            raise InvalidArgument(
                "workers and batch must be at least 1", hint="e.g. workers=2", name="workers"
            )
        self.services = tuple(services)
        self.url_or_settings = url_or_settings
        self.broker = broker
        self.workers = workers
        self.batch = batch
        self.events = events
        self.announce_after = announce_after
        self.status_interval = status_interval
        #: Builds the crash policy (default: CrashQuarantine, for brokers without counts).
        self.crashes = crashes
        self.host = host_id()
        self.transport: Transport | None = None
        self.processor: Processor | None = None
        self._inboxes: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(workers)]
        #: Crash suspects: a thread of their own, so each is handled the moment it arrives.
        self._quarantine: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stop_requested = threading.Event()
        self._foreground = False
        self._status = ServiceStatus.NEW
        self._since = time.monotonic()
        self._status_changed = threading.Condition()
        self._report_now = False  # asked to report at once (REPORT_STATUS)
        self._announced: ServiceStatus | None = None  # what the status thread last sent
        self._was_busy = False  # processing began since the status thread last looked
        self._busy = 0
        self._utilisation = Utilisation(status_interval)

    @property
    def name(self) -> str:
        """The services' names joined (what status messages call this runner)."""
        return "+".join(s.name for s in self.services)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServiceRunner {self.name} x{self.workers} {state}>"

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stopped.is_set()

    @property
    def handled(self) -> int:
        """Messages handled (committed) so far."""
        return self.processor.handled if self.processor else 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ServiceRunner:
        """Connect, subscribe and start the workers in the background; returns self."""
        if self._threads:
            return self
        self._set_status(ServiceStatus.STARTING)
        for service in self.services:
            if service.open is not None:
                service.open()
        self.transport = connect(self.url_or_settings, broker=self.broker)
        for service in self.services:
            if service.attach is not None:
                service.attach(self.transport)
        self.processor = Processor(
            self.transport,
            self.host,
            events=self.events,
            announce_after=self.announce_after,
            cumulative_acks=True,
        )
        if self.crashes is not None:
            self.processor.crashes = self.crashes(self.transport, self.processor.dead_letters)
        self._threads.append(
            threading.Thread(target=self._status_loop, daemon=True, name="zocalo-nb-status")
        )
        names = [f"zocalo-nb-worker-{n}" for n in range(self.workers)]
        for name, inbox in zip(
            [*names, "zocalo-nb-worker-quarantine"], self._all_inboxes(), strict=True
        ):
            alone = inbox is self._quarantine
            self._threads.append(
                threading.Thread(target=self._work, args=(inbox, alone), daemon=True, name=name)
            )
        for thread in self._threads:
            thread.start()
        first = self._inboxes[0]
        for service in self.services:
            for name in service.queues:
                # One subscription per worker, its messages handled in order by that worker:
                # so its acks may be cumulative (see Transport.subscribe).
                for inbox in self._inboxes:
                    self.transport.subscribe(
                        name,
                        self._receiver(service, inbox),
                        ack="cumulative",
                        prefetch=prefetch_for(
                            service.batch or self.batch, self.transport.in_process
                        ),
                        handoff=True,  # the receiver only puts it in the worker's inbox
                    )
                # What the crash policy adds (the quarantine queue for crash suspects): one
                # at a time, each handled as it arrives, so a crash blames the message in hand.
                for extra in self.processor.crashes.extra_queues(name):
                    self.transport.subscribe(
                        extra,
                        self._receiver(service, self._quarantine),
                        prefetch=1,
                        handoff=True,
                    )
            for name in service.topics:
                self.transport.subscribe_topic(name, self._receiver(service, first))
        self.transport.subscribe_topic(COMMAND_TOPIC, self._command)
        self._set_status(ServiceStatus.IDLE)
        log.info(
            "%s started on %s with %d worker(s)",
            self.name,
            self.transport.settings.redacted_url(),
            self.workers,
        )
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batches in hand, hand back the rest, close. Safe to call twice."""
        if not self._threads or self._stopping.is_set():
            self._stopped.wait(timeout)
            return
        self._stopping.set()
        self._set_status(ServiceStatus.SHUTDOWN)
        workers = [t for t in self._threads if t.name.startswith("zocalo-nb-worker")]
        for inbox in self._all_inboxes():
            inbox.put(_STOP)
        for thread in workers:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._set_status(ServiceStatus.END)
        with self._status_changed:
            self._status_changed.notify_all()
        for thread in self._threads:  # the status thread may be sending "shutting down":
            if thread.name == "zocalo-nb-status" and thread is not threading.current_thread():
                thread.join(timeout)  # let it finish, so that "shutdown" is the last word
        if self.processor is not None:
            self.processor.close()
        for service in self.services:
            if service.close is not None:
                try:
                    service.close()
                except Exception:  # the others still stop, and the connection closes
                    log.exception("closing service %s failed", service.name)
        if self.transport is not None:
            self._broadcast_status()
            self.transport.close()  # unstarted messages go back to the broker
        self._stopped.set()
        log.info("%s stopped after %d message(s)", self.name, self.handled)

    def kill(self) -> None:
        """Stop abruptly, as if the process died: close the connection at once, so nothing in
        progress commits and the broker hands every held message to another consumer."""
        self._stopping.set()
        for inbox in self._all_inboxes():
            inbox.put(_STOP)
        if self.transport is not None:
            self.transport.close()
        self._stopped.set()

    def run(self) -> int:
        """Run in the foreground until SIGTERM/SIGINT or a shutdown command; returns 0."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: shutting down", signum)
            self._stop_requested.set()

        self._foreground = True
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self._stop_requested.wait()  # interrupted by signals, set by shutdown commands
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def __enter__(self) -> ServiceRunner:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- work ------------------------------------------------------------------------------
    def _all_inboxes(self) -> list[queue.SimpleQueue[Any]]:
        return [*self._inboxes, self._quarantine]

    def _receiver(self, service: Service, inbox: queue.SimpleQueue[Any]) -> Any:
        def receive(message: Message) -> None:
            inbox.put((service, message))

        return receive

    def _work(self, inbox: queue.SimpleQueue[Any], alone: bool = False) -> None:
        """Handle this worker's messages in the order received, in batches of messages from
        one subscription (never reordered: a cumulative ack covers everything before it)."""
        assert self.processor is not None
        carry: Any = None
        while True:
            item, carry = (carry if carry is not None else inbox.get()), None
            if item is _STOP or self._stopping.is_set():
                return
            batch = [item]
            limit = 1 if alone else (item[0].batch or self.batch)
            yielded = False
            while len(batch) < limit:
                try:
                    more = inbox.get_nowait()
                except queue.Empty:
                    if yielded:
                        break
                    # Let a thread that is decoding further messages run first (the GIL),
                    # once: a short batch costs a transaction of its own. Returns at once
                    # when no other thread wants to run.
                    time.sleep(0)
                    yielded = True
                    continue
                if more is _STOP or more[1].subscription != item[1].subscription:
                    carry = more  # starts the next batch
                    break
                batch.append(more)
            self._busy_change(+1)
            try:
                self.processor.handle_batch(batch)
            except BaseException:  # never let a worker die: the batch was handed back
                log.exception("unexpected error handling a batch")
            finally:
                self._busy_change(-1)

    def _busy_change(self, delta: int) -> None:
        with self._status_changed:
            self._busy += delta
            if not self._stopping.is_set():
                self._set_status(ServiceStatus.PROCESSING if self._busy else ServiceStatus.IDLE)

    def _command(self, message: Message) -> None:
        body = message.body
        if isinstance(body, dict) and body.get("command") == REPORT_STATUS:
            with self._status_changed:
                self._report_now = True
                self._status_changed.notify_all()
            return
        if not isinstance(body, dict) or body.get("command") != "shutdown":
            return
        names = {s.name for s in self.services} | {self.name}
        if body.get("host") == self.host or body.get("service") in names:
            log.info("shutdown requested via the %s topic", COMMAND_TOPIC)
            self._stop_requested.set()
            if not self._foreground:  # a notebook: nobody waits in run(), so stop here
                threading.Thread(target=self.stop, daemon=True, name="zocalo-nb-stop").start()

    # -- status ----------------------------------------------------------------------------
    def _set_status(self, status: ServiceStatus) -> None:
        with self._status_changed:
            if status != self._status:
                self._status = status
                self._since = time.monotonic()
                if status == ServiceStatus.PROCESSING:
                    self._was_busy = True  # announced even if idle again before it is seen
                self._utilisation.update(status)
                # A busy runner flips between processing and idle at every batch: the status
                # thread polls for "idle" while "processing" is announced (_status_loop), so
                # those flips do not each cost a thread switch.
                if status != self._announced and not (
                    status == ServiceStatus.IDLE and self._announced == ServiceStatus.PROCESSING
                ):
                    self._status_changed.notify_all()

    def _status_loop(self) -> None:
        announced: ServiceStatus | None = None
        last = 0.0
        while not self._stopped.is_set():
            with self._status_changed:
                self._announced = announced
                if (
                    self._status == announced
                    and not self._unseen_work(announced)
                    and not self._stopping.is_set()
                    and not self._report_now
                ):
                    wait = last + self.status_interval - time.time()
                    if announced == ServiceStatus.PROCESSING:  # not woken when idle begins
                        wait = min(wait, IDLE_SETTLE / 2)
                    self._status_changed.wait(max(0.0, wait))
                unseen = self._unseen_work(announced)
                settle = self._since + IDLE_SETTLE - time.monotonic()
                if (
                    self._status == ServiceStatus.IDLE
                    and announced is not None
                    and settle > 0
                    and not unseen
                ):
                    # As upstream: announce "idle" only once it lasts, so a busy service
                    # flipping between batches does not flood the status topic.
                    self._status_changed.wait(settle)
                    continue
                status, asked, self._report_now = self._status, self._report_now, False
                if unseen and status == ServiceStatus.IDLE:
                    status = ServiceStatus.PROCESSING  # work came and went unseen: say so
                self._was_busy = False
            if status == ServiceStatus.END:
                return
            if asked or status != announced or time.time() >= last + self.status_interval:
                self._broadcast_status(status)
                announced, last = status, time.time()

    def _unseen_work(self, announced: ServiceStatus | None) -> bool:
        """Processing began (and may have ended) since "processing" was last announced."""
        return self._was_busy and announced not in (ServiceStatus.PROCESSING, None)

    def _broadcast_status(self, status: ServiceStatus | None = None) -> None:
        transport = self.transport
        if transport is None:
            return
        body = status_message(
            self.host, status or self._status, self.name, self.name, self._utilisation
        )
        try:
            transport.broadcast(STATUS_TOPIC, body, expiration=STATUS_EXPIRY)
        except TransportError as err:
            log.debug("status not sent: %s", err.message)
