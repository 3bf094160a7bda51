"""Handling received messages so that nothing is lost and nothing is done twice.

For a batch of messages, every handler runs first (its sends are collected, not sent);
then one transaction carries, for each message, its ack plus either its outputs and events,
or a retry copy, or its dead letter. The broker commits all of it or none: a crash before the
commit leaves every message unacked, and the broker hands it to another consumer.

Counting, so that a bad message ends in the DLQ instead of looping forever:

- ``zocalo-nb-attempt``: handler failures. A handler that raises is retried (ack + re-send
  with a delay, in one transaction) until ``max_attempts``; then the message is
  dead-lettered with the error type, message, a truncated traceback, service, host and
  attempts in its headers.
- ``zocalo-nb-redeliveries``: crashes and disconnects. The broker marks such messages
  ``redelivered`` but (ActiveMQ over STOMP) gives no count, so each one is first re-sent with
  this counter increased; past ``max_redeliveries`` it is dead-lettered. A message that kills
  its service every time therefore ends in the DLQ too.

  A crash redelivers every message the consumer *held*, not only the one that killed it. So
  that innocent neighbours are not blamed, a redelivered message is re-sent to the
  quarantine queue ``<queue>.suspects``, which runners consume one message at a time
  (prefetch 1, batches of one): there, a crash can only be the fault of the message in hand.
- Messages that are not JSON, not recipe messages, or point at a missing step are
  dead-lettered at once with the reason; so is a handler that raises :class:`Reject`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zocalo_nb.dispatch import MessageContext, NotARecipeMessage, RecipeMessage, StepContext
from zocalo_nb.dispatch.context import Outgoing, deliver
from zocalo_nb.dispatch.events import EVENTS_TOPIC, State, event, input_payload
from zocalo_nb.service.service import Reject, Service
from zocalo_nb.service.watch import SlowWatch
from zocalo_nb.transport import Message, RawBody, Transport, TransportError

log = logging.getLogger(__name__)

ATTEMPT = "zocalo-nb-attempt"
REDELIVERIES = "zocalo-nb-redeliveries"
#: Headers describing why a message was dead-lettered.
DLQ_HEADERS = (
    "zocalo-nb-reason",
    "zocalo-nb-error-type",
    "zocalo-nb-error",
    "zocalo-nb-traceback",
    "zocalo-nb-service",
    "zocalo-nb-host",
    "zocalo-nb-attempts",
    "zocalo-nb-dead-lettered-at",
)
#: Header: when (epoch seconds) the message was dead-lettered.
DEAD_LETTERED_AT = "zocalo-nb-dead-lettered-at"
TRACEBACK_LIMIT = 2000
#: States whose events carry the step's input (payload and path).
TERMINAL = frozenset({"succeeded", "failed", "retrying", "dead-lettered"})


@dataclass
class Outcome:
    """What the transaction for one message must carry."""

    message: Message
    sends: list[Outgoing] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class Processor:
    """Runs handlers and commits their results (see module docstring). Thread-safe."""

    def __init__(
        self,
        transport: Transport,
        host: str,
        *,
        events: bool = True,
        announce_after: float = 0.5,
        cumulative_acks: bool = False,
    ) -> None:
        self.transport = transport
        self.cumulative_acks = cumulative_acks
        self.host = host
        self.events = events
        self.announce_after = announce_after
        self.handled = 0
        self._watch = SlowWatch(announce_after, self._received) if announce_after > 0 else None

    def close(self) -> None:
        """Stop the thread that announces slow handlers."""
        if self._watch is not None:
            self._watch.close()

    def handle_batch(self, batch: list[tuple[Service, Message]]) -> None:
        """Handle messages and commit everything in one transaction."""
        outcomes = [self.handle(service, message) for service, message in batch]
        acks = [o.message for o in outcomes if o.message.destination.startswith("/queue/")]
        if self.cumulative_acks:  # the last message of each subscription acks the others
            acks = list({m.subscription: m for m in acks}.values())
        try:
            with self.transport.batching(), self.transport.transaction() as tx:
                for outcome in outcomes:
                    for out in outcome.sends:
                        deliver(self.transport, out, tx)
                for message in acks:
                    self.transport.ack(message, transaction=tx)
                events = [
                    item
                    for outcome, (service, _) in zip(outcomes, batch, strict=True)
                    if service.events
                    for item in outcome.events
                ]
                if self.events and events:
                    self.transport.broadcast(EVENTS_TOPIC, events, transaction=tx)
        except TransportError as err:
            # Nothing was committed: the broker hands these messages out again. The aborted
            # transaction nacked the messages it acked; nack the ones a cumulative ack covered,
            # or a later cumulative ack would take them without their outputs.
            log.warning("could not commit %d message(s): %s", len(outcomes), err.message)
            for outcome in outcomes:
                if (
                    outcome.message.destination.startswith("/queue/")
                    and outcome.message not in acks
                ):
                    with contextlib.suppress(TransportError):
                        self.transport.nack(message)
            return
        self.handled += len(outcomes)

    # -- one message -----------------------------------------------------------------------
    def handle(self, service: Service, message: Message) -> Outcome:
        """Run the handler for one message and decide what its transaction carries."""
        attempt = _int(message.headers.get(ATTEMPT), 1)
        redeliveries = _int(message.headers.get(REDELIVERIES), 0)
        info = _Info(service, message, self.host, attempt)
        if not message.is_json:
            return self._dead(info, "the body is not JSON")
        ctx: MessageContext
        payload: Any = message.body
        if service.recipe:
            try:
                parsed = RecipeMessage.from_body(message.body, message.headers)
            except NotARecipeMessage as err:
                return self._dead(info, f"not a recipe message: {err.reason}")
            ctx = StepContext(parsed, message.headers, transport=self.transport)
            payload = parsed.payload
            info.run, info.step = parsed.run_id, parsed.pointer
            info.recorded = {"payload": input_payload(parsed.payload), "path": list(parsed.path)}
            limit = _int(
                parsed.recipe[parsed.pointer].fields.get("max-attempts"), service.max_attempts
            )
        else:
            ctx = MessageContext(message.headers)
            limit = service.max_attempts
        if message.redelivered:
            return self._redelivered(info, redeliveries + 1)
        announce = self.events and service.events
        watch = self._watch if announce else None
        if announce and watch is None:
            self._received(info)
        elif watch is not None:
            watch.start(id(info), info)
        started = time.time()
        try:
            service.handler(ctx, payload)
        except Reject as err:
            return self._dead(info, f"rejected: {err.message}", err, started=started)
        except Exception as err:
            if attempt < limit:
                return self._retry(info, err, started, service.retry_delay(attempt))
            failed = info.event("failed", started=started, error=_error(err))
            outcome = self._dead(info, f"failed {attempt} time(s)", err, started=started)
            outcome.events.insert(0, failed)
            return outcome
        finally:
            if watch is not None:
                watch.done(id(info))
        outcome = Outcome(message, list(ctx.outbox))
        for unwired in ctx.unwired:
            outcome.events.append(info.event("unwired-send", channel=unwired.channel))
        sent_to = sorted(
            {
                out.body["recipe-pointer"]
                for out in ctx.outbox
                if isinstance(out.body, dict) and "recipe-pointer" in out.body
            }
        )
        outcome.events.append(info.event("succeeded", started=started, sent_to=sent_to))
        return outcome

    def _received(self, info: Any) -> None:
        # Best effort: the terminal event travels with the transaction anyway.
        with contextlib.suppress(TransportError):
            self.transport.broadcast(EVENTS_TOPIC, [info.event("received")])

    def _retry(self, info: _Info, err: Exception, started: float, delay: float) -> Outcome:
        log.warning(
            "run %s step %s: %s (attempt %d), retrying in %.1f s",
            info.run,
            info.step,
            _oneline(err),
            info.attempt,
            delay,
        )
        headers = {
            **info.message.user_headers(),
            ATTEMPT: str(info.attempt + 1),
            "zocalo-nb-error": _oneline(err)[:500],
        }
        queue = home_queue(info.message.destination)
        copy = Outgoing("queue", queue, _body(info.message), headers, delay)
        retrying = info.event("retrying", started=started, error=_error(err), delay=delay)
        return Outcome(info.message, [copy], [retrying])

    def _redelivered(self, info: _Info, count: int) -> Outcome:
        if count > info.service.max_redeliveries:
            return self._dead(
                info,
                f"redelivered {count} time(s) after its consumer crashed or disconnected",
            )
        headers = {**info.message.user_headers(), REDELIVERIES: str(count)}
        suspects = suspect_queue(info.message.destination)
        copy = Outgoing("queue", suspects, _body(info.message), headers)
        return Outcome(info.message, [copy], [info.event("retrying", reason="redelivered")])

    def _dead(
        self,
        info: _Info,
        reason: str,
        err: BaseException | None = None,
        *,
        started: float | None = None,
    ) -> Outcome:
        log.error(
            "dead-lettering message %s from %s: %s",
            info.message.message_id,
            info.message.destination,
            reason,
        )
        headers = {
            **info.message.user_headers(),
            "original-destination": home_queue(info.message.destination),
            "zocalo-nb-reason": reason,
            "zocalo-nb-service": info.service.name,
            "zocalo-nb-host": self.host,
            "zocalo-nb-attempts": str(info.attempt),
            DEAD_LETTERED_AT: f"{time.time():.3f}",
        }
        if err is not None:
            headers["zocalo-nb-error-type"] = type(err).__name__
            headers["zocalo-nb-error"] = _oneline(err)[:1000]
            headers["zocalo-nb-traceback"] = "".join(traceback.format_exception(err))[
                -TRACEBACK_LIMIT:
            ]
        name = home_queue(info.message.destination).split("/", 2)[-1]
        dead = Outgoing("queue", f"/queue/DLQ.{name}", _body(info.message), headers)
        extra: dict[str, Any] = {"reason": reason}
        if err is not None:
            extra["error"] = _error(err)
        if started is not None:
            extra["started"] = started
        return Outcome(info.message, [dead], [info.event("dead-lettered", **extra)])


@dataclass
class _Info:
    service: Service
    message: Message
    host: str
    attempt: int
    run: str | None = None
    step: int | None = None
    recorded: dict[str, Any] | None = None  # the input payload and path, for reruns

    def event(self, state: State, *, started: float | None = None, **extra: Any) -> dict[str, Any]:
        if started is not None:
            extra["started"] = started
            extra["duration"] = time.time() - started
        if self.recorded is not None and state in TERMINAL:
            extra.update(self.recorded)
        return event(
            state,
            service=self.service.name,
            host=self.host,
            run=self.run,
            step=self.step,
            attempt=self.attempt,
            message_id=self.message.message_id,
            queue=self.message.destination,
            **extra,
        )


SUSPECTS = ".suspects"


def suspect_queue(destination: str) -> str:
    """The quarantine queue for messages redelivered from ``destination``."""
    return destination if destination.endswith(SUSPECTS) else destination + SUSPECTS


def home_queue(destination: str) -> str:
    """The queue a (possibly quarantined) message belongs to."""
    return destination.removesuffix(SUSPECTS)


def is_suspect(message: Message) -> bool:
    """True for a message in a quarantine queue (handled alone)."""
    return message.destination.endswith(SUSPECTS)


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _body(message: Message) -> Any:
    return message.body if message.is_json else RawBody(message.body)


def _oneline(err: BaseException) -> str:
    text = str(err).strip().replace("\n", " ")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _error(err: BaseException) -> Mapping[str, str]:
    return {"type": type(err).__name__, "message": str(err)[:1000]}
