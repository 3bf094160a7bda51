"""The policies a Processor applies, as small objects it calls (dramatiq's middleware is the
model): what a handler failure becomes (:class:`Retries`), what a redelivery after a crash
becomes (:class:`CrashQuarantine`), what a dead letter carries (:class:`DeadLetters`), and
what each delivery reports (:meth:`Delivery.event`). A broker that counts deliveries itself
(RabbitMQ quorum queues) swaps CrashQuarantine for its own crash policy; the batch and
transaction loop in :mod:`.processing` does not change.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from zocalo_nb.dispatch.events import event
from zocalo_nb.service.service import Service
from zocalo_nb.transport import Message, Prepared, Transport
from zocalo_nb.transport.message import dumps, new_message_id
from zocalo_nb.wire.events import TERMINAL, EventState
from zocalo_nb.wire.headers import (
    ATTEMPT,
    ATTEMPTS,
    DEAD_LETTERED_AT,
    ERROR,
    ERROR_TYPE,
    HOST,
    MESSAGE_ID,
    ORIGINAL_DESTINATION,
    REASON,
    REDELIVERED,
    REDELIVERIES,
    SERVICE,
    TRACEBACK,
)
from zocalo_nb.wire.queues import home_queue, is_suspect, suspect_queue

log = logging.getLogger(__name__)
TRACEBACK_LIMIT = 2000


@dataclass
class MessageCommit:
    """What the transaction for one message must carry: prepared sends (with their delay)
    and encoded events."""

    message: Message
    sends: list[tuple[Prepared, float | None]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """One delivery of a message to a service: who, what, which attempt, which run/step."""

    service: Service
    message: Message
    host: str
    attempt: int
    run: str | None = None
    step: int | None = None
    recorded: dict[str, Any] | None = None  # the input payload and path, for reruns

    def event(self, state: EventState, *, started: float | None = None, **extra: Any) -> str:
        """The event, JSON-encoded (its input payload left out if that cannot be encoded)."""
        message = self.message
        record = event(
            state,
            service=self.service.name,
            host=self.host,
            run=self.run,
            step=self.step,
            attempt=self.attempt,
            message_id=message.message_id,
            queue=message.destination,
        )
        if started is not None:
            record["started"] = started
            record["duration"] = record["time"] - started
        if self.recorded is not None and state in TERMINAL:
            record.update(self.recorded)
        if extra:
            record.update(extra)
        try:
            return dumps(record)
        except (TypeError, ValueError, RecursionError):
            record.pop("payload", None)
            return json.dumps(record, default=repr)


def copy_of(
    transport: Transport,
    delivery: Delivery,
    queue: str,
    headers: dict[str, str],
    delay: float | None = None,
) -> tuple[Prepared, float | None]:
    """The delivered message itself (its exact text) for ``queue`` with ``headers``."""
    body = delivery.message.raw_body()
    return transport.prepare("queue", queue, body, headers), delay


class DeadLetters:
    """Dead letters: the message, to ``DLQ.<its queue>``, with why, who, where and when."""

    def __init__(self, transport: Transport, host: str) -> None:
        self.transport, self.host = transport, host

    def dead(
        self,
        delivery: Delivery,
        reason: str,
        err: BaseException | None = None,
        *,
        started: float | None = None,
    ) -> MessageCommit:
        message = delivery.message
        log.error(
            "dead-lettering message %s from %s: %s", message.message_id, message.destination, reason
        )
        headers = {
            **message.user_headers(),
            **_dead_headers(message, reason, delivery.service.name, self.host, delivery.attempt),
        }
        if err is not None:
            headers[ERROR_TYPE] = error_name(err)
            headers[ERROR] = one_line(err)[:1000]
            headers[TRACEBACK] = _traceback(err)
        dead = self.transport.dlq(home_queue(message.destination))  # the broker's naming rule
        copy = copy_of(self.transport, delivery, dead, headers)
        extra: dict[str, Any] = {"reason": reason, "dlq": dead}
        if err is not None:
            extra["error"] = _error(err)
        if started is not None:
            extra["started"] = started
        return MessageCommit(message, [copy], [delivery.event(EventState.DEAD_LETTERED, **extra)])

    def last_resort(self, service: Service, message: Message, err: Exception) -> MessageCommit:
        """The DLQ for a message nothing else could be done with: its text, our reason and
        its id, no other headers (they may be what is wrong with it)."""
        reason = f"could not be processed: {one_line(err)}"[:1000]
        headers = _dead_headers(message, reason, service.name, self.host, 1)
        headers[ERROR_TYPE] = error_name(err)
        headers[MESSAGE_ID] = str(message.message_id)[:200] or new_message_id()
        text = message.text or (message.body if isinstance(message.body, str) else "")
        name = self.transport.dlq(home_queue(message.destination)).split("/", 2)[2]
        return MessageCommit(message, [(Prepared("queue", name, text, headers), None)])


class Retries:
    """Handler failures: retried with the service's backoff (``zocalo-nb-attempt`` counts)
    until the step's ``max-attempts`` (else the service's), then dead-lettered."""

    def __init__(self, transport: Transport, dead_letters: DeadLetters) -> None:
        self.transport, self.dead_letters = transport, dead_letters

    def failed(
        self, delivery: Delivery, err: BaseException, started: float, limit: int
    ) -> MessageCommit:
        if delivery.attempt < limit:
            return self._retry(
                delivery, err, started, delivery.service.retry_delay(delivery.attempt)
            )
        failed = delivery.event(EventState.FAILED, started=started, error=_error(err))
        commit = self.dead_letters.dead(
            delivery, f"failed {delivery.attempt} time(s)", err, started=started
        )
        commit.events.insert(0, failed)
        return commit

    def _retry(
        self, delivery: Delivery, err: BaseException, started: float, delay: float
    ) -> MessageCommit:
        log.warning(
            "run %s step %s: %s (attempt %d), retrying in %.1f s",
            delivery.run,
            delivery.step,
            one_line(err),
            delivery.attempt,
            delay,
        )
        message = delivery.message
        headers = {
            **message.user_headers(),
            ATTEMPT: str(delivery.attempt + 1),
            ERROR: one_line(err)[:500],
        }
        copy = copy_of(self.transport, delivery, home_queue(message.destination), headers, delay)
        retrying = delivery.event(
            EventState.RETRYING, started=started, error=_error(err), delay=delay
        )
        return MessageCommit(message, [copy], [retrying])


class CrashPolicy(Protocol):
    """What a redelivered message becomes (its consumer died or stopped holding it), and
    which extra queues a runner consumes for it."""

    def redelivered(self, delivery: Delivery, counted: int) -> MessageCommit: ...

    def extra_queues(self, queue: str) -> list[str]: ...


class CrashQuarantine:
    """For brokers that mark redeliveries without counting them (ActiveMQ over STOMP): a
    message redelivered from its queue goes, uncounted, to ``<queue>.suspects``, consumed
    one at a time; redelivered from there it was in hand when its consumer died, and that
    counts (``zocalo-nb-redeliveries``) up to the service's ``max_redeliveries``."""

    def __init__(self, transport: Transport, dead_letters: DeadLetters) -> None:
        self.transport, self.dead_letters = transport, dead_letters

    def redelivered(self, delivery: Delivery, counted: int) -> MessageCommit:
        message = delivery.message
        if is_suspect(message.destination):  # alone and in hand: its own fault, probably
            counted += 1
            if counted > delivery.service.max_redeliveries:
                return self.dead_letters.dead(
                    delivery,
                    f"redelivered {counted} time(s) after its consumer crashed or disconnected",
                )
        headers = {**message.user_headers(), REDELIVERIES: str(counted)}
        copy = copy_of(self.transport, delivery, suspect_queue(message.destination), headers)
        return MessageCommit(
            message, [copy], [delivery.event(EventState.RETRYING, reason=REDELIVERED)]
        )

    def extra_queues(self, queue: str) -> list[str]:
        return [suspect_queue(queue)]


def _dead_headers(
    message: Message, reason: str, service: str, host: str, attempts: int
) -> dict[str, str]:
    return {
        ORIGINAL_DESTINATION: home_queue(message.destination),
        REASON: reason,
        SERVICE: service,
        HOST: host,
        ATTEMPTS: str(attempts),
        DEAD_LETTERED_AT: f"{time.time():.3f}",
    }


def as_count(value: Any, default: int) -> int:
    """A counter from a header or recipe field; ``default`` for anything that is not a
    finite whole number (None, text, Infinity, NaN)."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError, OverflowError):
        return default


def error_name(err: BaseException) -> str:
    return type(err).__name__


def _text(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:  # an exception whose __str__ fails must not take the batch with it
        return f"<unprintable {error_name(err)}>"


def one_line(err: BaseException) -> str:
    text = _text(err).strip().replace("\n", " ")
    return f"{error_name(err)}: {text}" if text else error_name(err)


def _traceback(err: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(err))[-TRACEBACK_LIMIT:]
    except Exception:
        return one_line(err)


def _error(err: BaseException) -> Mapping[str, str]:
    return {"type": error_name(err), "message": _text(err)[:1000]}
